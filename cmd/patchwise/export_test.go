package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patchwise-ml/patchwise/nn/safetensors"
	"github.com/patchwise-ml/patchwise/pipeline/checkpoint"
)

func TestExportVerb(t *testing.T) {
	ds := pretrainDataset(t, 64)
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "cfg.json")
	if err := os.WriteFile(cfgFile, []byte(`{"encoder":{"widths":[4,6]},"steps":2,"batch":16,"workers":1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	runDir := filepath.Join(dir, "run")
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"pretrain", ds, "--pretext", "ae-mirrored", "-o", runDir, "--config", cfgFile}, &stdout, &stderr); code != exitOK {
		t.Fatalf("pretrain exit %d; stderr:\n%s", code, stderr.String())
	}
	ckpt, err := checkpoint.Latest(runDir)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "enc.safetensors")

	for _, c := range []struct {
		name   string
		args   []string
		code   int
		stdout []string
		stderr []string
	}{
		{"export run", []string{"export", runDir, "-o", out}, exitOK,
			[]string{"export     " + out + " (14 tensors", "pretext ae-mirrored, step 2", "widths 4,6, 6-d features", "normalize none"}, nil},
		{"exists", []string{"export", runDir, "-o", out}, exitFailure, nil, []string{out, "file already exists", "--force"}},
		{"force, checkpoint", []string{"export", "--force", ckpt, "-o", out}, exitOK, []string{ckpt}, nil},
		{"help", []string{"help", "export"}, exitOK, []string{"usage: patchwise export CKPT", "Example:", "patchwise export runs/relpos", "-o file", "--force", "load_state_dict(strict=True)"}, nil},
		{"no -o", []string{"export", runDir}, exitUsage, nil, []string{"-o FILE"}},
		{"no CKPT", []string{"export", "-o", out}, exitUsage, nil, []string{"got 0 arguments"}},
		{"two CKPTs", []string{"export", runDir, ckpt, "-o", out}, exitUsage, nil, []string{"got 2 arguments"}},
		{"missing checkpoint", []string{"export", filepath.Join(dir, "none"), "-o", filepath.Join(dir, "x.safetensors")}, exitFailure, nil, []string{filepath.Join(dir, "none")}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), c.args, &stdout, &stderr)
			if code != c.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, c.code, stderr.String())
			}
			for _, s := range c.stdout {
				if !strings.Contains(stdout.String(), s) {
					t.Errorf("stdout lacks %q:\n%s", s, stdout.String())
				}
			}
			for _, s := range c.stderr {
				if !strings.Contains(stderr.String(), s) {
					t.Errorf("stderr lacks %q:\n%s", s, stderr.String())
				}
			}
		})
	}
	ts, meta, err := safetensors.Read(out)
	if err != nil {
		t.Fatal(err)
	}
	if w := ts["body.4.weight"]; len(w.Shape) != 4 || w.Shape[0] != 6 || w.Shape[1] != 4 || meta["pretext"] != "ae-mirrored" {
		t.Errorf("body.4.weight shape %v, metadata %v", w.Shape, meta)
	}
	if _, err := os.Stat(filepath.Join(dir, "x.safetensors")); err == nil {
		t.Error("a failed export left its output")
	}
}
