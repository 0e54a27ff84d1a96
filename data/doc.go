// Package data owns everything between bytes on disk and labelled uint8
// images: decoding, ingest sources (image folders, IDX, CIFAR and STL-10
// binaries), the on-disk dataset format, dataset readers and splits.
//
// It knows nothing about package nn: it hands out raw uint8 pixels and
// labels, never tensors. It never prints and never exits; malformed input is
// reported as an error (a *FormatError for IDX files) that names the file.
//
// For now it holds the reader for the MNIST-family IDX format, used by MNIST
// and Fashion-MNIST: ReadIDX and OpenIDX decode one file, LoadIDXPair loads
// an images file with its labels file, and FindIDX locates the four standard
// files in a folder.
package data
