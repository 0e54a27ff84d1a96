package main

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patchwise-ml/patchwise/pretext"
)

// TestViews draws every registered pretext's views of a small dataset.
func TestViews(t *testing.T) {
	ds := pairsDataset(t, 12, 32)
	cfgFile := filepath.Join(t.TempDir(), "cfg.json")
	if err := os.WriteFile(cfgFile, []byte(`{"encoder": {"widths": [4, 8]}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, name := range pretext.Names() {
		spec, _ := pretext.Lookup(name)
		if spec.Labels {
			continue // the dataset is unlabelled
		}
		t.Run(name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "views.png")
			var stdout, stderr bytes.Buffer
			if code := run(context.Background(), []string{"views", ds, "--pretext", name, "--config", cfgFile, "-o", out, "--n", "3"}, &stdout, &stderr); code != exitOK {
				t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
			}
			if !strings.Contains(stdout.String(), "3 samples of "+name) || !strings.Contains(stdout.String(), "views: ") {
				t.Errorf("stdout:\n%s", stdout.String())
			}
			f, err := os.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := png.Decode(f); err != nil {
				t.Fatal(err)
			}
			// It never overwrites.
			if code := run(context.Background(), []string{"views", ds, "--pretext", name, "-o", out}, &stdout, &stderr); code != exitUsage {
				t.Errorf("second run over %s: exit %d", out, code)
			}
		})
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"views", ds, "-o", filepath.Join(t.TempDir(), "x.png")}, &stdout, &stderr); code != exitUsage || !strings.Contains(stderr.String(), "--pretext") {
		t.Errorf("no pretext: exit %d, stderr %s", code, stderr.String())
	}
	if code := run(context.Background(), []string{"views", ds, "--pretext", "colourise", "-o", filepath.Join(t.TempDir(), "x.png")}, &stdout, &stderr); code != exitUsage || !strings.Contains(stderr.String(), "colourise") {
		t.Errorf("unknown pretext: exit %d, stderr %s", code, stderr.String())
	}
}
