// Package probe measures how good a frozen encoder's features are: it
// extracts features at a chosen stage, fits a linear probe (multinomial
// logistic regression with L2, by L-BFGS) and runs k-NN on them, and
// reports accuracy, per-class accuracy and confusion matrices together with
// the full protocol that produced each number (DESIGN.md §6).
package probe
