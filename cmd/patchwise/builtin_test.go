package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/patchwise-ml/patchwise/data/builtin"
	"github.com/patchwise-ml/patchwise/pipeline"
)

// isolateCache points the user cache folder, where builtin:NAME is
// materialized, to a temporary folder, and returns where the embedded
// datasets will be.
func isolateCache(t *testing.T) string {
	t.Helper()
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir()) // for platforms that ignore XDG_CACHE_HOME
	dir, err := builtin.CacheDir()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// runOK runs patchwise with args and fails the test unless it exits 0.
func runOK(t *testing.T, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), args, &stdout, &stderr); code != exitOK {
		t.Fatalf("%q: exit %d; stderr:\n%s", args, code, stderr.String())
	}
	return stdout.String()
}

// TestBuiltinEverywhere gives builtin:NAME to every verb that takes a
// dataset, and checks that each verb's help says so.
func TestBuiltinEverywhere(t *testing.T) {
	cache := isolateCache(t)
	dir := t.TempDir()

	t.Run("inspect", func(t *testing.T) {
		var in struct {
			Dir          string   `json:"dir"`
			Classes      []string `json:"classes"`
			Skipped      int      `json:"skipped"`
			IngestReport string   `json:"ingest_report"`
		}
		if err := json.Unmarshal([]byte(runOK(t, "inspect", "--json", "builtin:fashion-mnist-small")), &in); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(in.Classes, fashionNames) || !strings.HasPrefix(in.Dir, cache) || in.IngestReport != "" {
			t.Errorf("inspect --json: %+v", in)
		}
		out := runOK(t, "inspect", "builtin:fashion-mnist-small")
		for _, want := range []string{"Ankle boot 200", "report   none"} {
			if !strings.Contains(out, want) {
				t.Errorf("inspect lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("pairs", func(t *testing.T) {
		png := filepath.Join(dir, "pairs.png")
		runOK(t, "pairs", "builtin:mnist-small", "-o", png, "--n", "2")
		if _, err := os.Stat(png); err != nil {
			t.Error(err)
		}
	})
	t.Run("pretrain", func(t *testing.T) {
		cfg := filepath.Join(dir, "cfg.json")
		if err := os.WriteFile(cfg, []byte(`{"encoder": {"widths": [4]}, "val_every": -1, "val_batches": 1}`), 0o644); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, "pretrain")
		runOK(t, "pretrain", "builtin:mnist-small", "--pretext", "ae-linear", "--steps", "2", "--batch", "8", "--config", cfg, "-o", out)
		saved, err := pipeline.LoadPretrainConfig(filepath.Join(out, pipeline.TrainConfigFile))
		if err != nil || saved.Dataset != "builtin:mnist-small" {
			t.Errorf("config.json's dataset %q (%v), want builtin:mnist-small as given", saved.Dataset, err)
		}
	})
	t.Run("probe", func(t *testing.T) {
		// One probe: the text on stdout, the JSON in result.json.
		out := filepath.Join(dir, "probe")
		text := runOK(t, "probe", "--random-encoder", "--widths", "4", "--train", "builtin:fashion-mnist-small", "--l2", "0.01", "--no-cache", "-o", out)
		if !strings.Contains(text, "  Ankle boot ") || !strings.Contains(text, "  T-shirt/top ") {
			t.Errorf("probe's per-class lines lack the class names:\n%s", text)
		}
		var res struct {
			Classes      []string  `json:"classes"`
			PerClass     []float64 `json:"per_class"`
			TrainDataset string    `json:"train_dataset"`
		}
		js, err := os.ReadFile(filepath.Join(out, "result.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(js, &res); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(res.Classes, fashionNames) || len(res.PerClass) != 10 || res.TrainDataset != "builtin:fashion-mnist-small" {
			t.Errorf("result.json: classes %q, %d per-class values, train dataset %q", res.Classes, len(res.PerClass), res.TrainDataset)
		}
	})
	t.Run("unknown", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), []string{"inspect", "builtin:cifar-10-small"}, &stdout, &stderr); code != exitFailure ||
			!strings.Contains(stderr.String(), "fashion-mnist-small, mnist-small") {
			t.Errorf("unknown builtin: exit %d, stderr %q", code, stderr.String())
		}
	})
	t.Run("help", func(t *testing.T) {
		for _, verb := range []string{"inspect", "pairs", "pretrain", "probe", "run", "compare"} {
			if h := runOK(t, "help", verb); !strings.Contains(h, "builtin:") || !strings.Contains(h, "fashion-mnist-small") || !strings.Contains(h, "mnist-small") {
				t.Errorf("%s --help does not say builtin:NAME is accepted:\n%s", verb, h)
			}
		}
	})
}
