package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/patchwise-ml/patchwise/pipeline"
	"github.com/patchwise-ml/patchwise/pipeline/checkpoint"
)

// requireMPIRun skips the test when mpirun or Open MPI's library is
// missing, unless PATCHWISE_REQUIRE_MPI=1 (CI) says it must run.
func requireMPIRun(t *testing.T) {
	t.Helper()
	_, err := exec.LookPath("mpirun")
	if status := pipeline.MPIStatus(); err == nil && strings.HasPrefix(status, "not available") {
		err = errors.New(status)
	}
	if err != nil {
		if os.Getenv("PATCHWISE_REQUIRE_MPI") == "1" {
			t.Fatalf("PATCHWISE_REQUIRE_MPI=1 but: %v", err)
		}
		t.Skipf("no Open MPI (Debian: openmpi-bin libopenmpi-dev): %v", err)
	}
}

// mpiRun runs patchwise's args under mpirun as np processes, one core
// each, and returns the combined output and the exit error. It never
// waits more than two minutes: a hang fails the test.
func mpiRun(t *testing.T, bin string, np int, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "mpirun", append([]string{"--allow-run-as-root", "--oversubscribe", "-np", fmt.Sprint(np), bin}, args...)...)
	cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("mpirun %v did not end within 2 minutes:\n%s", args, out)
	}
	return string(out), err
}

// runLosses returns the training and validation losses of a training
// directory.
func runLosses(t *testing.T, dir string) (train, val []float64) {
	t.Helper()
	rs, err := pipeline.ReadMetrics(filepath.Join(dir, pipeline.MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.IsVal() {
			val = append(val, *r.ValLoss)
		} else {
			train = append(train, *r.Loss)
		}
	}
	return train, val
}

// TestPretrainMPI runs the real binary under mpirun: two processes log the
// losses of one on the same global batch at every step and validation;
// a two-process training resumed from an earlier checkpoint repeats its
// losses exactly; a process that fails ends both; and a run started by
// mpirun without --distributed is refused.
func TestPretrainMPI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs mpirun")
	}
	requireMPIRun(t)
	bin := filepath.Join(t.TempDir(), "patchwise")
	if b, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	ds := pretrainDataset(t, 256)
	cfgPath := filepath.Join(t.TempDir(), "cfg.json")
	cfg := `{"pretext": "rotation", "steps": 12, "batch": 16, "workers": 1, "seed": 5,
		"encoder": {"widths": [4, 8]}, "val_every": 4, "val_batches": 2, "checkpoint_every": 4, "keep_last": 5}`
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	one, two := filepath.Join(dir, "one"), filepath.Join(dir, "two")
	cmd := exec.Command(bin, "pretrain", ds, "--config", cfgPath, "-o", one)
	cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("one process: %v\n%s", err, b)
	}
	if out, err := mpiRun(t, bin, 2, "pretrain", ds, "--config", cfgPath, "--distributed", "mpi", "-o", two); err != nil {
		t.Fatalf("two processes: %v\n%s", err, out)
	}
	wantTrain, wantVal := runLosses(t, one)
	gotTrain, gotVal := runLosses(t, two)
	if len(gotTrain) != 12 || len(gotTrain) != len(wantTrain) || len(gotVal) != len(wantVal) {
		t.Fatalf("two processes logged %d steps, %d validations; one %d, %d", len(gotTrain), len(gotVal), len(wantTrain), len(wantVal))
	}
	close := func(a, b float64) bool { return math.Abs(a-b) <= 1e-4*(1+math.Abs(a)) }
	for i := range wantTrain {
		if !close(wantTrain[i], gotTrain[i]) {
			t.Errorf("step %d: two processes' loss %v, one process's %v", i+1, gotTrain[i], wantTrain[i])
		}
	}
	for i := range wantVal {
		if !close(wantVal[i], gotVal[i]) {
			t.Errorf("validation %d: two processes' loss %v, one process's %v", i+1, gotVal[i], wantVal[i])
		}
	}

	t.Run("resume", func(t *testing.T) {
		// The training as it stood at step 8: the later checkpoint gone.
		three := filepath.Join(t.TempDir(), "three")
		if err := os.CopyFS(three, os.DirFS(two)); err != nil {
			t.Fatal(err)
		}
		if err := os.RemoveAll(filepath.Join(three, checkpoint.DirName(12))); err != nil {
			t.Fatal(err)
		}
		// Without --distributed: the saved config says mpi.
		if out, err := mpiRun(t, bin, 2, "pretrain", "--resume", "-o", three); err != nil {
			t.Fatalf("resume: %v\n%s", err, out)
		}
		train, val := runLosses(t, three)
		if !slices.Equal(train, gotTrain) || !slices.Equal(val, gotVal) {
			t.Errorf("resumed from step 8: losses %v %v, uninterrupted %v %v", train, val, gotTrain, gotVal)
		}
	})
	t.Run("one fails", func(t *testing.T) {
		// Rank 0 alone finds the directory taken; rank 1 would wait for
		// it in an all-reduce.
		out, err := mpiRun(t, bin, 2, "pretrain", ds, "--config", cfgPath, "--distributed", "mpi", "-o", two)
		if err == nil || !strings.Contains(out, "rank 0 of 2") || !strings.Contains(out, "exists") {
			t.Errorf("rank 0 failing: %v\n%s", err, out)
		}
	})
	t.Run("batch", func(t *testing.T) {
		out, err := mpiRun(t, bin, 2, "pretrain", ds, "--config", cfgPath, "--distributed", "mpi", "--batch", "15", "-o", filepath.Join(t.TempDir(), "x"))
		if err == nil || !strings.Contains(out, "batch 15 is not a multiple of the 2 processes") {
			t.Errorf("batch 15 over 2 processes: %v\n%s", err, out)
		}
	})
	t.Run("not distributed", func(t *testing.T) {
		out, err := mpiRun(t, bin, 2, "pretrain", ds, "--config", cfgPath, "-o", filepath.Join(t.TempDir(), "x"))
		if err == nil || !strings.Contains(out, "add --distributed mpi") {
			t.Errorf("two processes without --distributed: %v\n%s", err, out)
		}
	})
}
