// Package experiments owns the tasks: data sets (the synthetic 2-D grid
// mixtures GMM-1 and GMM-2, and later MNIST, text and DNA), their exact
// reference distributions where they exist, metrics, the typed TOML
// configurations, and the jobs that the ddsmc command runs.
package experiments
