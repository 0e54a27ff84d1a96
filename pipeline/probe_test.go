package pipeline

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patchwise-ml/patchwise/data"
	"github.com/patchwise-ml/patchwise/data/builtin"
	"github.com/patchwise-ml/patchwise/pretext"
)

func TestProbeRefusesMismatchedData(t *testing.T) {
	dir := t.TempDir()
	mnistDir, err := builtin.Materialize("mnist-small", dir)
	if err != nil {
		t.Fatal(err)
	}
	mnist, err := data.Open(mnistDir)
	if err != nil {
		t.Fatal(err)
	}
	trainOnlyDir := filepath.Join(dir, "train-only")
	if err := WriteTinyDataset(trainOnlyDir, 32, 0, 16, 1); err != nil {
		t.Fatal(err)
	}
	trainOnly, err := data.Open(trainOnlyDir)
	if err != nil {
		t.Fatal(err)
	}
	unlabelledDir := filepath.Join(dir, "unlabelled")
	w, err := data.Create(unlabelledDir, data.Preprocess{Size: 28, Channels: 1}, nil, data.Provenance{Format: "generated"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		if err := w.Add(data.Test, data.Record{Pixels: make([]uint8, 28*28), Label: -1, Origin: string(rune('a' + i))}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := w.Close(); err != nil {
		t.Fatal(err)
	}
	unlabelled, err := data.Open(unlabelledDir)
	if err != nil {
		t.Fatal(err)
	}

	renamedDir := filepath.Join(dir, "renamed")
	w, err = data.Create(renamedDir, data.Preprocess{Size: 28, Channels: 1}, strings.Split("zero one two three four five six seven eight nine", " "), data.Provenance{Format: "generated"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if err := w.Add(data.Test, data.Record{Pixels: make([]uint8, 28*28), Label: i, Origin: string(rune('a' + i))}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := w.Close(); err != nil {
		t.Fatal(err)
	}
	renamed, err := data.Open(renamedDir)
	if err != nil {
		t.Fatal(err)
	}

	cfg := tinyConfig(t, "ae-linear")
	res, err := Pretrain(context.Background(), cfg, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	trained, err := LoadEncoder(res.Checkpoint)
	if err != nil {
		t.Fatal(err)
	}
	rgb, err := RandomEncoder(pretext.EncoderConfig{Channels: 3, Widths: []int{4}}, 28, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name        string
		enc         *FrozenEncoder
		train, test *data.Dataset
		cfg         ProbeConfig
		want        string
	}{
		{"image side", trained, mnist, mnist, ProbeConfig{}, "trained on 16×16 images but the dataset's are 28×28"},
		{"channels", rgb, mnist, mnist, ProbeConfig{}, "takes 3-channel images but the dataset's have 1"},
		{"no test split", trained, trainOnly, trainOnly, ProbeConfig{}, `has neither a "test" nor a "val" split`},
		{"unlabelled", nil, mnist, unlabelled, ProbeConfig{}, "has no labels"},
		{"class names", nil, mnist, renamed, ProbeConfig{}, "name their classes differently (0, 1, 2, 3, 4, 5, 6, 7, 8, 9 and zero, one"},
		{"stage", trained, mnist, mnist, ProbeConfig{Stage: 5}, "stage 5: the encoder has blocks 1 to 2"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Probe(context.Background(), ProbeRequest{Encoder: c.enc, Train: c.train, Test: c.test, Config: c.cfg}, nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err %v, want %q", err, c.want)
			}
		})
	}
}
