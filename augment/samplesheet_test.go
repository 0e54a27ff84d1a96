package augment

import (
	"image/png"
	"io"
	"testing"

	"github.com/patchwise-ml/patchwise/data"
)

// TestSampleSheet draws single images (ImageSampler, whole images at the
// dataset's side) and checks that each row shows the sample's image where
// the view is drawn, and pairs, whose sheet has two views.
func TestSampleSheet(t *testing.T) {
	const n, side = 5, 16
	ds := imageDataset(t, 12, side, 3)
	recs, err := ds.Load(data.Train)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewImageSampler(ImageSamplerConfig{}, side, 3)
	if err != nil {
		t.Fatal(err)
	}
	img, err := SampleSheet(recs, side, 3, s, 4, n)
	if err != nil {
		t.Fatal(err)
	}
	// Rows of max(48, side·k) pixels plus a caption, below a header.
	k := (sampleViewSide + side - 1) / side
	rowH := side*k + 15 + 4
	if h := img.Bounds().Dy(); h != 15+4+n*rowH {
		t.Fatalf("height %d, want %d", h, 15+4+n*rowH)
	}
	perm := NewRand(4, 0, -1).Perm(len(recs))
	viewX := 4 + side*k + 12
	for i := range n {
		pix := recs[perm[i]].Pixels
		y0 := 15 + 4 + i*rowH
		for _, p := range [][2]int{{0, 0}, {side - 1, 3}, {7, 9}} {
			got := img.NRGBAAt(viewX+p[0]*k, y0+p[1]*k)
			o := (p[1]*side + p[0]) * 3
			if got.R != pix[o] || got.G != pix[o+1] || got.B != pix[o+2] {
				t.Fatalf("sample %d pixel %v: %v, want %v", i, p, got, pix[o:o+3])
			}
		}
	}
	if err := png.Encode(io.Discard, img); err != nil {
		t.Fatal(err)
	}

	ps, err := NewPairSampler(PairConfig{}, ModernDefaults(), side, 3, 8)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := SampleSheet(recs, side, 3, ps, 4, 3); err != nil {
		t.Fatal(err)
	}
	if _, err := SampleSheet(nil, side, 3, ps, 4, 3); err == nil {
		t.Error("no error for no images")
	}
	if _, err := SampleSheet(recs, side, 2, ps, 4, 3); err == nil {
		t.Error("no error for 2 channels")
	}
}
