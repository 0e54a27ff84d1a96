// Package data owns everything between bytes on disk and labelled uint8
// images: decoding, ingest sources (image folders, IDX, CIFAR and STL-10
// binaries), the on-disk dataset format, dataset readers and splits.
//
// It knows nothing about package nn: it hands out raw uint8 pixels and
// labels, never tensors. It never prints and never exits; malformed input is
// reported as an error that names the file (a *FormatError for source
// files, an *ImageError for images, a *CorruptError for datasets).
//
// The pieces:
//   - Sources (Source) yield the inputs of an ingest: NewFolder for an
//     image tree (class subfolders become labels), NewIDX, NewCIFAR10,
//     NewCIFAR100 and NewSTL10 for the standard binary datasets; OpenSource
//     recognises them.
//   - DecodeFile and Convert turn an image file or an image into a
//     Record's pixels: any format and colour model, EXIF orientation, alpha
//     composited on white, resized to a square by a Preprocess policy.
//   - Ingest runs the sources through decoding on all cores and writes a
//     dataset, reporting (and skipping) bad inputs.
//   - Create and Open write and read the dataset format: a directory with
//     manifest.json and zstd shards of CRC-checked records, each shard's
//     SHA-256 in the manifest, the dataset ID the SHA-256 of the manifest.
//     Datasets are read by index (Read), whole (Load) or streamed through
//     a seeded shuffle buffer (Stream).
//   - ContactSheet draws records in a grid with their class names.
//   - ReadIDX, OpenIDX, LoadIDXPair and FindIDX read the MNIST-family IDX
//     files directly.
package data
