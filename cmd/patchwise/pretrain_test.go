package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/patchwise-ml/patchwise/data"
	"github.com/patchwise-ml/patchwise/pipeline"
	"github.com/patchwise-ml/patchwise/pipeline/checkpoint"
)

// pretrainDataset writes n train and n/4 val 16×16 grey images of 2
// classes (horizontal and vertical gradients with noise).
func pretrainDataset(t *testing.T, n int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ds")
	w, err := data.Create(dir, data.Preprocess{Size: 16, Channels: 1}, []string{"h", "v"}, data.Provenance{Format: "generated"})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	pix := make([]uint8, 16*16)
	for i := range n + n/4 {
		label := i % 2
		for y := range 16 {
			for x := range 16 {
				v := x
				if label == 1 {
					v = y
				}
				pix[y*16+x] = uint8(v*15 + rng.IntN(20))
			}
		}
		split := data.Train
		if i >= n {
			split = data.Val
		}
		if err := w.Add(split, data.Record{Pixels: pix, Label: label, Origin: fmt.Sprint("gen#", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestPretrainVerb(t *testing.T) {
	ds := pretrainDataset(t, 128)
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "cfg.json")
	// Tiny widths from the config file; the flags override its steps.
	if err := os.WriteFile(cfgFile, []byte(`{"encoder":{"Widths":[4,8]},"hidden":16,"steps":99,"val_every":2,"val_batches":1,"checkpoint_every":2}`), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "run")
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"pretrain", ds, "--pretext", "relpos", "-o", out, "--steps", "4",
		"--batch", "16", "--optimizer", "adamw", "--workers", "2", "--seed", "5", "--config", cfgFile}, &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
	}
	for _, f := range []string{pipeline.TrainConfigFile, pipeline.MetricsFile, checkpoint.DirName(2), checkpoint.DirName(4)} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
	if !strings.Contains(stdout.String(), "steps      4 of 4") || !strings.Contains(stdout.String(), "val_acc") {
		t.Errorf("summary:\n%s", stdout.String())
	}
	saved, err := pipeline.LoadPretrainConfig(filepath.Join(out, pipeline.TrainConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	if saved.Steps != 4 || saved.Optimizer != "adamw" || saved.Seed != 5 || len(saved.Encoder.Widths) != 2 {
		t.Errorf("saved config %+v", saved)
	}

	// Resuming a finished run does nothing and succeeds.
	stdout.Reset()
	if code := run(context.Background(), []string{"pretrain", "--resume", "-o", out}, &stdout, &stderr); code != exitOK {
		t.Fatalf("resume exit %d; stderr:\n%s", code, stderr.String())
	}

	for _, c := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"help", []string{"pretrain", "--help"}, exitOK, ""},
		{"unknown pretext", []string{"pretrain", ds, "--pretext", "no-such-pretext", "-o", filepath.Join(dir, "x")}, exitUsage, "no-such-pretext"},
		{"no out", []string{"pretrain", ds, "--pretext", "relpos"}, exitUsage, "out"},
		{"steps and epochs", []string{"pretrain", ds, "--pretext", "relpos", "-o", filepath.Join(dir, "y"), "--steps", "3", "--epochs", "1"}, exitUsage, "one or the other"},
		{"size for dataset", []string{"pretrain", ds, "--pretext", "relpos", "-o", filepath.Join(dir, "z"), "--batch", "100000"}, exitUsage, "batch"},
		{"existing run", []string{"pretrain", ds, "--pretext", "relpos", "-o", out}, exitFailure, "exists"},
		{"bad config file", []string{"pretrain", ds, "--config", filepath.Join(dir, "missing.json")}, exitUsage, "missing.json"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), c.args, &stdout, &stderr)
			if code != c.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, c.code, stderr.String())
			}
			if !strings.Contains(stderr.String(), c.want) {
				t.Errorf("stderr does not mention %q:\n%s", c.want, stderr.String())
			}
			if c.name == "help" && !strings.Contains(stdout.String(), "Example:") {
				t.Errorf("help:\n%s", stdout.String())
			}
		})
	}
}

// TestPretrainSIGINT builds patchwise, starts a long pretraining run as a
// real process, interrupts it once it has logged a step and checks that it
// exits with 130 after saving a checkpoint.
func TestPretrainSIGINT(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	if runtime.GOOS == "windows" {
		t.Skip("no SIGINT")
	}
	bin := filepath.Join(t.TempDir(), "patchwise")
	build := exec.Command("go", "build", "-o", bin, ".")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	ds := pretrainDataset(t, 512)
	out := filepath.Join(t.TempDir(), "run")
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, "pretrain", ds, "--pretext", "ae-mirrored", "-o", out, "--steps", "1000000", "--batch", "32", "--workers", "1")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if b, _ := os.ReadFile(filepath.Join(out, pipeline.MetricsFile)); bytes.Count(b, []byte("\n")) >= 2 {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("no metrics after 60 s; stderr:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitInterrupted {
		t.Fatalf("exit %v, want %d; stderr:\n%s", err, exitInterrupted, stderr.String())
	}
	ckpt, err := checkpoint.Latest(out)
	if err != nil {
		t.Fatal(err)
	}
	m, err := checkpoint.ReadManifest(ckpt)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := pipeline.ReadMetrics(filepath.Join(out, pipeline.MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	if last := rs[len(rs)-1].Step; m.Step != last || m.Step < 2 {
		t.Errorf("checkpoint at step %d, last logged step %d", m.Step, last)
	}
	if !strings.Contains(stderr.String(), "--resume") {
		t.Errorf("stderr does not say how to resume:\n%s", stderr.String())
	}
}
