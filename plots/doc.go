// Package plots owns the figures: it reads recorded results and traces and
// draws them with gonum/plot. It never runs an experiment itself.
package plots
