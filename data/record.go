package data

import (
	"context"
	"image"
)

// Record is one stored image: its pixels after preprocessing, its label and
// where it came from.
type Record struct {
	// Pixels holds Size×Size×Channels values, channels-last: row by row,
	// pixel by pixel, the channels of each pixel together.
	Pixels []uint8
	Label  int    // class index into the dataset's Classes, or -1 when unlabelled
	Origin string // provenance: a source file path, or "data_batch_1.bin#123" for a record inside a file
}

// Split names.
const (
	Train     = "train"
	Val       = "val"
	Test      = "test"
	Unlabeled = "unlabeled"
)

// Item is one input of an ingest, as a Source yields it: either a file to
// decode (Path) or an image already in memory (Image); or, with Err set, an
// input that cannot be used, which ingest reports and skips.
type Item struct {
	Split  string      // Train, Test or Unlabeled; "" means Train
	Label  int         // class index into the source's Classes, or -1
	Origin string      // provenance, as in Record
	Path   string      // file to decode, or ""
	Image  image.Image // decoded image when Path is "", else nil
	Err    error       // why the input cannot be used; the item is skipped
}

// Source is an ingest input: an image folder or a standard dataset's files.
type Source interface {
	// Format names the source's format ("folder", "idx", "cifar10", …).
	Format() string
	// Classes returns the label names, in label order; nil when the source
	// is unlabelled.
	Classes() []string
	// Items calls yield for every item in a deterministic order, stopping
	// at the first error yield returns, which Items then returns. Problems
	// with single inputs are items with Err set; an error from Items itself
	// means the source as a whole cannot be read.
	Items(ctx context.Context, yield func(Item) error) error
}

// Resize policies: how an image of any shape becomes Size×Size.
const (
	ResizeCrop    = "crop"    // shorter side to Size, then the centre Size×Size
	ResizePad     = "pad"     // longer side to Size, then padded with Background to a square
	ResizeStretch = "stretch" // both sides to Size, ignoring the aspect ratio
)

// Preprocess says how ingest turns any image into a Record's pixels. Its
// zero value means the defaults given on each field.
type Preprocess struct {
	Size      int    `json:"size"`       // output side in pixels; default 32
	Channels  int    `json:"channels"`   // 1 (grey) or 3 (RGB); default 3
	Resize    string `json:"resize"`     // ResizeCrop (default), ResizePad or ResizeStretch
	MaxPixels int    `json:"max_pixels"` // images with more pixels (width × height) are refused before decoding; default 100,000,000
	// Crops, when its N is positive, makes N random crops of each input
	// instead of one record of the whole (see Crops); Resize must then
	// be ResizeStretch, its default with crops. Without crops it is left
	// out of the manifest, whose bytes (and the dataset ID) are then what
	// they were before crops existed.
	Crops Crops `json:"crops,omitzero"`
}

// Transparent pixels are composited onto white, and ResizePad pads with
// white: a fixed background, so a dataset does not depend on a setting
// that is easy to forget.
