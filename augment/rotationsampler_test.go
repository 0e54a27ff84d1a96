package augment

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/patchwise-ml/patchwise/data"
)

func TestRotate90(t *testing.T) {
	// A 3×3 patch of 2 channels: pixel (x, y) holds (10y+x, −(10y+x)).
	src := NewPatch(3, 3, 2)
	for y := range 3 {
		for x := range 3 {
			v := float32(10*y + x)
			src.Pix[(y*3+x)*2], src.Pix[(y*3+x)*2+1] = v, -v
		}
	}
	for _, tc := range []struct {
		k    int
		want []float32 // channel 0, row by row
	}{
		{0, []float32{0, 1, 2, 10, 11, 12, 20, 21, 22}},
		{1, []float32{2, 12, 22, 1, 11, 21, 0, 10, 20}}, // the top row becomes the left column, bottom to top
		{2, []float32{22, 21, 20, 12, 11, 10, 2, 1, 0}},
		{3, []float32{20, 10, 0, 21, 11, 1, 22, 12, 2}},
		{-1, []float32{20, 10, 0, 21, 11, 1, 22, 12, 2}},
		{5, []float32{2, 12, 22, 1, 11, 21, 0, 10, 20}},
	} {
		dst := NewPatch(3, 3, 2)
		Rotate90(dst, src, tc.k)
		for i, w := range tc.want {
			if dst.Pix[2*i] != w || dst.Pix[2*i+1] != -w {
				t.Fatalf("k %d: pixel %d is (%v, %v), want (%v, %v)", tc.k, i, dst.Pix[2*i], dst.Pix[2*i+1], w, -w)
			}
		}
	}

	// Turns compose, and four are the identity, on an even side too.
	p := NewPatch(4, 4, 3)
	for i := range p.Pix {
		p.Pix[i] = float32(i)
	}
	for a := range 4 {
		for b := range 4 {
			ab, step := NewPatch(4, 4, 3), NewPatch(4, 4, 3)
			Rotate90(step, p, a)
			Rotate90(ab, step, b)
			direct := NewPatch(4, 4, 3)
			Rotate90(direct, p, a+b)
			if !slices.Equal(ab.Pix, direct.Pix) {
				t.Errorf("%d then %d turns differ from %d", a, b, a+b)
			}
			if (a+b)%4 == 0 && !slices.Equal(ab.Pix, p.Pix) {
				t.Errorf("%d then %d turns are not the identity", a, b)
			}
		}
	}

	for _, tc := range []struct {
		name     string
		dst, src Patch
	}{
		{"not square", NewPatch(4, 3, 1), NewPatch(3, 4, 1)},
		{"other side", NewPatch(3, 3, 1), NewPatch(4, 4, 1)},
		{"other channels", NewPatch(4, 4, 3), NewPatch(4, 4, 1)},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", tc.name)
				}
			}()
			Rotate90(tc.dst, tc.src, 1)
		}()
	}
}

// rotationLoader returns a loader of rotations of split train of ds.
func rotationLoader(t *testing.T, ds *data.Dataset, cfg ImageSamplerConfig, lc LoaderConfig) *Loader {
	t.Helper()
	m := ds.Manifest()
	s, err := NewRotationSampler(cfg, m.Size, m.Channels)
	if err != nil {
		t.Fatal(err)
	}
	l, err := NewLoader(ds, data.Train, s, lc)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestRotationSamplerValues checks every sample against a direct draw of
// the ImageSampler from the same generator and its rotations.
func TestRotationSamplerValues(t *testing.T) {
	const n, side, ch = 12, 16, 3
	ds := imageDataset(t, n, side, ch)
	recs, err := ds.Load(data.Train)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cfg  ImageSamplerConfig
	}{
		{"train_crop_flip_resize", ImageSamplerConfig{Crop: 10, Size: 8, Flip: true, Random: true}},
		{"train_whole", ImageSamplerConfig{Random: true}},
		{"eval_centre_crop", ImageSamplerConfig{Crop: 0.5, Flip: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const seed, batch = 5, 4
			l := rotationLoader(t, ds, tc.cfg, LoaderConfig{Batch: batch, Workers: 2, Seed: seed, Shuffle: tc.cfg.Random})
			img, _ := NewImageSampler(tc.cfg, side, ch)
			size := img.Config().Size
			v := l.Views()
			if len(v) != 1 || v[0].Count != Rotations || v[0].Side != size {
				t.Fatalf("views %+v", v)
			}
			per := size * size * ch
			d := img.NewDrawer()
			got := collectImages(t, l, 1, 0, 3) // epoch 1
			differ := false
			for bi, b := range got {
				if len(b.x) != b.n*Rotations*per || len(b.labels) != b.n*Rotations {
					t.Fatalf("batch %d: %d values and %d labels for %d samples", bi, len(b.x), len(b.labels), b.n)
				}
				for j := range b.n {
					i := bi*batch + j
					up := make([]float32, per)
					if err := d.Draw(Image{Pix: recs[b.imgs[j]].Pixels, Side: side, C: ch}, NewRand(seed, 1, i), Sample{Views: [][]float32{up}, Labels: make([]int, 1)}); err != nil {
						t.Fatal(err)
					}
					sample := b.x[j*Rotations*per : (j+1)*Rotations*per]
					for k := range Rotations {
						want := NewPatch(size, size, ch)
						Rotate90(want, Patch{Pix: up, W: size, H: size, C: ch}, k)
						if !slices.Equal(sample[k*per:(k+1)*per], want.Pix) {
							t.Fatalf("sample %d: image %d is not the draw turned %d times", i, k, k)
						}
						if l := b.labels[j*Rotations+k]; l != k {
							t.Fatalf("sample %d: label %d is %d", i, k, l)
						}
					}
					if !slices.Equal(sample[:per], sample[2*per:3*per]) {
						differ = true
					}
				}
			}
			if !differ {
				t.Error("every image equals its half turn")
			}
		})
	}
}

func TestRotationSamplerDeterministic(t *testing.T) {
	const n = 21
	ds := imageDataset(t, n, 12, 1)
	cfg := ImageSamplerConfig{Crop: 0.75, Size: 8, Flip: true, Random: true}
	var ref []imageCopy
	for _, workers := range []int{1, 2, 8} {
		l := rotationLoader(t, ds, cfg, LoaderConfig{Batch: 4, Workers: workers, Prefetch: 3, Seed: 9, Shuffle: true})
		got := collectImages(t, l, 0, 0, 12)
		if ref == nil {
			ref = got
			continue
		}
		for i := range got {
			if !got[i].equal(ref[i]) {
				t.Fatalf("%d workers: batch %d differs from 1 worker's", workers, i)
			}
		}
	}
	// Resumed at epoch 1, batch 2: the same batches.
	l := rotationLoader(t, ds, cfg, LoaderConfig{Batch: 4, Workers: 3, Seed: 9, Shuffle: true})
	per := l.BatchesPerEpoch()
	res := collectImages(t, l, 1, 2, len(ref)-per-2)
	for i, b := range res {
		if !b.equal(ref[per+2+i]) {
			t.Fatalf("resumed batch %d differs", i)
		}
	}
	// Another seed, other crops.
	l = rotationLoader(t, ds, cfg, LoaderConfig{Batch: 4, Workers: 2, Seed: 10, Shuffle: true})
	if other := collectImages(t, l, 0, 0, 1); other[0].equal(ref[0]) {
		t.Error("seeds 9 and 10 give the same first batch")
	}
}

func TestRotationSamplerErrors(t *testing.T) {
	_, err := NewRotationSampler(ImageSamplerConfig{Size: -1, Crop: 40}, 32, 1)
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range []string{"size -1", "crop 40"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q: %v", w, err)
		}
	}
	s, err := NewRotationSampler(ImageSamplerConfig{Crop: 0.5}, 32, 3)
	if err != nil {
		t.Fatal(err)
	}
	if c := s.Config(); c.Size != 32 || s.Labels() != Rotations {
		t.Errorf("config %+v, %d labels", c, s.Labels())
	}
	ds := imageDataset(t, 3, 8, 1)
	l := rotationLoader(t, ds, ImageSamplerConfig{}, LoaderConfig{Batch: 2})
	st := l.Stream(context.Background(), 0, 0)
	defer st.Close()
	b, err := st.Next()
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Views[0]) != 2*Rotations*64 || len(b.Labels) != 2*Rotations {
		t.Errorf("batch of %d values, %d labels", len(b.Views[0]), len(b.Labels))
	}
	b.Release()
}

// TestRotateCommutesWithResize checks that resizing leaves no trace of
// the orientation: turning then resizing equals resizing then turning,
// for the enlargement of 28×28 Fashion-MNIST to 32×32 and a reduction.
func TestRotateCommutesWithResize(t *testing.T) {
	for _, tc := range []struct{ from, to, c int }{{28, 32, 1}, {20, 12, 3}} {
		src := NewPatch(tc.from, tc.from, tc.c)
		for i := range src.Pix {
			src.Pix[i] = float32(i%7) / 7
		}
		for k := 1; k < Rotations; k++ {
			turned, a := NewPatch(tc.from, tc.from, tc.c), NewPatch(tc.to, tc.to, tc.c)
			Rotate90(turned, src, k)
			Resize(a, turned)
			resized, b := NewPatch(tc.to, tc.to, tc.c), NewPatch(tc.to, tc.to, tc.c)
			Resize(resized, src)
			Rotate90(b, resized, k)
			for i := range a.Pix {
				if d := a.Pix[i] - b.Pix[i]; d > 1e-5 || d < -1e-5 {
					t.Fatalf("%d→%d, %d turns: value %d is %v turned first, %v resized first", tc.from, tc.to, k, i, a.Pix[i], b.Pix[i])
				}
			}
		}
	}
}
