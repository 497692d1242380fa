// Package plots owns the figures: it reads recorded results and traces and
// draws them with gonum/plot. It never runs an experiment itself.
//
// Conventions common to all figures:
//   - The format comes from the file extension, ".png" (150 dpi) or ".svg"
//     (case-insensitive); anything else is an error. The file is written
//     atomically, so a failed call never leaves a partial file and never
//     touches an existing one.
//   - Series get the Okabe–Ito colours in the order they are given, so the
//     same method gets the same colour in every figure when methods are
//     passed in the same order. After eight series the colours repeat with
//     a dashed line.
//   - The legend sits outside the axes, to the right, so it never hides
//     data. Series with an empty Name get no legend entry.
//   - Every error starts with "plots: "; bad input is reported, never
//     allowed to panic.
package plots
