package augment

import "math/rand/v2"

// A Sampler says what a pretext's training sample is made of, and makes
// samples from images. A sample is one or more views — each a fixed number
// of Side×Side float32 images, channels-last — and zero or more integer
// labels. Crop pairs (PairSampler), whole images (ImageSampler), rotated
// copies, shuffled tiles and augmented views are all samplers; Loader
// turns any of them into deterministic batches.
type Sampler interface {
	// Views describes the views of every sample, in order.
	Views() []View
	// Labels is the number of labels a sample has (0: none).
	Labels() int
	// NewDrawer returns a Drawer with its own scratch memory: each
	// loader goroutine gets one.
	NewDrawer() Drawer
}

// A Drawer makes samples for one goroutine.
type Drawer interface {
	// Draw writes the sample drawn from img into s, taking every random
	// choice from rng (and nothing else), so that the sample depends only
	// on the image and the generator's seed. It returns an error only for
	// a sample that cannot be drawn from img.
	Draw(img Image, rng *rand.Rand, s Sample) error
}

// View describes one view of a sample: Count images of Side×Side pixels
// (each with the images' channels).
type View struct {
	Name  string // what the view holds, e.g. "first crop", "tiles"
	Count int    // images per sample
	Side  int    // pixels
}

// Len returns the number of float32 values the view holds per sample for
// images of c channels: Count·Side²·c.
func (v View) Len(c int) int { return v.Count * v.Side * v.Side * c }

// Image is a dataset image as a Drawer reads it.
type Image struct {
	Pix   []uint8 // [Side, Side, C], channels-last
	Side  int     // pixels
	C     int     // channels, 1 or 3
	Label int     // the dataset's class index, -1 when unlabelled
}

// Sample is where a Drawer writes one sample: Views[k] holds
// View.Len(C) values of view k, Labels holds Sampler.Labels() labels.
type Sample struct {
	Views  [][]float32
	Labels []int
}
