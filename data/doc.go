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
//     composited on white, resized to a square by a Preprocess policy;
//     DecodeCrops and ConvertCrops cut an image into random crops
//     instead (Crops), for pools of training images cut from photos.
//   - Ingest runs the sources through decoding on all cores and writes a
//     dataset, skipping bad inputs and listing them in the dataset's
//     ingest report (IngestReportFile, read by ReadIngestReport). Class
//     names come from the sources, a ClassesFile beside an input, or the
//     configuration (ParseClassNames reads such a file).
//   - Create and Open write and read the dataset format: a directory with
//     manifest.json and zstd shards of CRC-checked records, each shard's
//     SHA-256 in the manifest, the dataset ID the SHA-256 of the manifest.
//     Datasets are read by index (Read), whole (Load) or streamed (a
//     Reader, or Stream): a pass in file order or in a seeded order
//     through a bounded shuffle buffer (Order), startable at any
//     position, whose memory does not grow with the split.
//   - ContactSheet draws records in a grid with their class names.
//   - ReadIDX, OpenIDX, LoadIDXPair and FindIDX read the MNIST-family IDX
//     files directly.
//
// # The dataset ID and the ingest report
//
// The dataset ID is the SHA-256 of manifest.json. Ingest also writes
// ingest-report.json into the dataset directory (every skipped input with
// its path and reason, every group of records with identical pixels, the
// counts), in the same temporary directory as the shards and renamed into
// place with them, but outside the manifest: the manifest does not refer
// to the report, and the report names the dataset by its ID. The ID thus
// depends on what makes the records (the inputs' pixels and labels, the
// preprocessing, the class names, the provenance) and on the skipped and
// duplicate counts, which the manifest has always kept, but not on how a
// decoder words its messages, which changes between versions of Go and
// its image packages while the records stay the same: the ID of an ingest,
// with problems or without, is what it was before ingests kept reports.
// An ingest without problems writes a report too, with zero counts, so
// that a report's presence says ingest made the dataset and checked every
// input, and its absence that something else made it (Create, the embedded
// datasets). The reader refuses a report whose ID or counts disagree with
// the manifest.
package data
