package pipeline

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/patchwise-ml/patchwise/data"
	"github.com/patchwise-ml/patchwise/pipeline/checkpoint"
	"github.com/patchwise-ml/patchwise/pretext"
)

// TestEachPretextOn96PixelImages pretrains every registered pretext for
// two steps on 96×96 RGB images and probes the encoder on them: relpos
// crops and jigsaw tiles go in at their own side (21 and 24 pixels), whole
// images at 96.
func TestEachPretextOn96PixelImages(t *testing.T) {
	dir := writeColorDataset(t, 24, 12, 96)
	ds, err := data.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range pretext.Names() {
		t.Run(name, func(t *testing.T) {
			cfg := PretrainConfig{
				Dataset: dir, Pretext: name, Out: filepath.Join(t.TempDir(), "run"),
				Steps: 2, Batch: 4, Workers: 2, Seed: 1, ValEvery: -1, ValBatches: 1, CheckpointEvery: -1,
				Config: pretext.Config{Encoder: pretext.EncoderConfig{Widths: []int{4, 4, 8, 8}}, Hidden: 8},
			}
			res, err := Pretrain(context.Background(), cfg, false, nil)
			if err != nil {
				t.Fatal(err)
			}
			c := res.Config
			if c.Size != 96 || c.ImageSide != 96 {
				t.Errorf("input side %d, image side %d: want 96", c.Size, c.ImageSide)
			}
			switch name {
			case "relpos":
				if c.PairSize != 21 {
					t.Errorf("relpos crops go in at %d px, want their own 21", c.PairSize)
				}
			case "jigsaw":
				if c.Jigsaw.Size != 24 {
					t.Errorf("jigsaw tiles go in at %d px, want their own 24", c.Jigsaw.Size)
				}
			}
			ckpt, err := checkpoint.Latest(cfg.Out)
			if err != nil {
				t.Fatal(err)
			}
			fe, err := LoadEncoder(ckpt)
			if err != nil {
				t.Fatal(err)
			}
			if fe.Size != 96 {
				t.Errorf("the probe feeds %d-px images, want 96", fe.Size)
			}
			r, err := Probe(context.Background(), ProbeRequest{Encoder: fe, Train: ds, Test: ds}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if r.Protocol.TestSplit != data.Val || len(r.Confusion) != 2 || r.LinearTop1 < 0 || r.LinearTop1 > 1 {
				t.Errorf("probe: split %q, top-1 %g, confusion %v", r.Protocol.TestSplit, r.LinearTop1, r.Confusion)
			}
		})
	}
}

// TestLoadPhotosExample checks that examples/photos.json, the config
// scripts/photo-experiment writes, loads and validates.
func TestLoadPhotosExample(t *testing.T) {
	cfg, err := LoadRunConfig("../examples/photos.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	in := cfg.Dataset.Ingest
	if in == nil || !in.Unlabelled || in.Preprocess.Crops.N != 150 || len(cfg.Transfer) != 1 || len(cfg.Seeds) != 3 {
		t.Errorf("example config read as %+v", cfg)
	}
}
