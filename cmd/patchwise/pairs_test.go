package main

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patchwise-ml/patchwise/data"
)

// pairsDataset writes a dataset of n size×size RGB images: a colour
// gradient with a dark diagonal bar, so crops are easy to place by eye.
func pairsDataset(t *testing.T, n, size int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ds")
	w, err := data.Create(dir, data.Preprocess{Size: size, Channels: 3}, nil, data.Provenance{Format: "test"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		pix := make([]uint8, size*size*3)
		for y := range size {
			for x := range size {
				p := pix[(y*size+x)*3:]
				p[0], p[1], p[2] = uint8(x*255/size), uint8(y*255/size), uint8((i*40)%256)
				if d := x - y - (i*7)%size + size/2; d >= -2 && d <= 2 {
					p[0], p[1], p[2] = 20, 20, 20
				}
			}
		}
		if err := w.Add(data.Train, data.Record{Pixels: pix, Label: -1, Origin: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestPairs(t *testing.T) {
	ds := pairsDataset(t, 20, 64)
	out := filepath.Join(t.TempDir(), "pairs.png")
	runOK := func(args ...string) string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), args, &stdout, &stderr); code != exitOK {
			t.Fatalf("%v: exit %d; stderr:\n%s", args, code, stderr.String())
		}
		return stdout.String()
	}
	so := runOK("pairs", ds, "-o", out, "--n", "8", "--color", "project", "--pixelate", "0.33", "--seed", "3")
	if !strings.Contains(so, "grid sampler: patch 14 px, gap 7 px, jitter ±2 px") {
		t.Errorf("stdout:\n%s", so)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() < 128 || b.Dy() < 128 {
		t.Errorf("picture of %v", b)
	}
	free := filepath.Join(t.TempDir(), "free.png")
	runOK("pairs", ds, "-o", free, "--sampler", "free", "--patch", "0.25", "--min-dist", "20", "--max-dist", "40", "--min-gap", "2", "--color", "drop")

	tests := []struct {
		name   string
		args   []string
		stderr []string
	}{
		{"existing output", []string{"pairs", ds, "-o", out}, []string{"already exists"}},
		{"grid too big", []string{"pairs", ds, "-o", out + "2", "--patch", "40", "--gap", "20", "--jitter", "7"},
			[]string{"needs 174 px, image is 64", "largest patch that fits with this gap and jitter is 3 px"}},
		{"free min > room", []string{"pairs", ds, "-o", out + "2", "--sampler", "free", "--patch", "30", "--min-dist", "40", "--max-dist", "50"},
			[]string{"largest min_dist is 34 px"}},
		{"bad sampler and color", []string{"pairs", ds, "-o", out + "2", "--sampler", "spiral", "--color", "sepia"},
			[]string{`color "sepia"`}},
		{"bad length", []string{"pairs", ds, "-o", out + "2", "--patch", "-1"}, []string{"flag -patch", "want pixels"}},
		{"no output", []string{"pairs", ds}, []string{"-o FILE.png is required"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(context.Background(), tt.args, &stdout, &stderr); code != exitUsage {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, exitUsage, stderr.String())
			}
			for _, s := range tt.stderr {
				if !strings.Contains(stderr.String(), s) {
					t.Errorf("stderr lacks %q:\n%s", s, stderr.String())
				}
			}
		})
	}
	if _, err := os.Stat(out + "2"); err == nil {
		t.Error("a refused run wrote a file")
	}
	if keep := os.Getenv("PAIRS_PNG"); keep != "" {
		b, _ := os.ReadFile(out)
		os.WriteFile(keep, b, 0o644)
		b, _ = os.ReadFile(free)
		os.WriteFile(strings.TrimSuffix(keep, ".png")+"-free.png", b, 0o644)
	}
}
