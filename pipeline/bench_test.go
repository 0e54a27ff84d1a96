package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

func TestBenchSmall(t *testing.T) {
	cfg := BenchConfig{Batch: 2, Size: 16, Channels: 1, Steps: 2, Warmup: -1}
	got, err := Bench(context.Background(), cfg, NoProgress{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("got %d results, want one per reference model", len(got))
	}
	for i, r := range got {
		if r.Model != []string{"classifier", "autoencoder", "relpos"}[i] || r.Batch != 2 || r.Size != 16 || r.Channels != 1 {
			t.Errorf("result %d = %+v", i, r)
		}
		if r.StepMS <= 0 || r.SamplesPerS <= 0 || r.Threads < 1 {
			t.Errorf("result %d has no timing: %+v", i, r)
		}
	}
}

func TestBenchValidate(t *testing.T) {
	err := BenchConfig{Models: []string{"nope"}, Batch: -1, Channels: 2, Size: 4}.Validate()
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{`unknown model "nope"`, "batch must be positive", "channels must be 1 or 3", "size must be at least 16"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if err := (BenchConfig{}).Validate(); err != nil {
		t.Errorf("zero config: %v", err)
	}
}

func TestBenchCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Bench(ctx, BenchConfig{Batch: 2, Size: 16}, NoProgress{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// TestTorchReferenceScript runs bench/torch_ref.py, the PyTorch side of
// the speed comparison, on a tiny batch and checks that it times every
// model Bench knows and prints every field of BenchResult's JSON that
// does not depend on the implementation.
func TestTorchReferenceScript(t *testing.T) {
	py := torchPython(t)
	out, err := exec.Command(py, "../bench/torch_ref.py", "--models", strings.Join(BenchModels, ","),
		"--batch", "2", "--size", "16", "--channels", "1", "--steps", "1", "--warmup", "0", "--threads", "1").Output()
	if err != nil {
		t.Fatalf("bench/torch_ref.py: %v\n%s", err, out)
	}
	var ours map[string]any
	b, _ := json.Marshal(BenchResult{})
	if err := json.Unmarshal(b, &ours); err != nil {
		t.Fatal(err)
	}
	var models []string
	for line := range strings.Lines(string(out)) {
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		for k := range ours {
			if _, ok := r[k]; !ok {
				t.Errorf("torch_ref.py's %v lacks the field %q", r["model"], k)
			}
		}
		if r["batch"] != 2.0 || r["size"] != 16.0 || r["channels"] != 1.0 || !(r["samples_per_s"].(float64) > 0) {
			t.Errorf("torch_ref.py printed %v", r)
		}
		models = append(models, r["model"].(string))
	}
	if !slices.Equal(models, BenchModels) {
		t.Errorf("torch_ref.py timed %v, want %v", models, BenchModels)
	}
}

func TestBenchResNet18(t *testing.T) {
	cfg := BenchConfig{Models: []string{BenchResNet18}, Batch: 2, Size: 32, Channels: 3, Steps: 1, Warmup: -1, Width: 1.0 / 16}
	got, err := Bench(context.Background(), cfg, NoProgress{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Model != BenchResNet18 || got[0].Width != 1.0/16 || got[0].Size != 32 || !(got[0].SamplesPerS > 0) {
		t.Errorf("results %+v", got)
	}
	for _, tc := range []struct {
		cfg  BenchConfig
		want string
	}{
		{BenchConfig{Models: []string{BenchResNet18}, Size: 16}, "size must be at least 32 for resnet18"},
		{BenchConfig{Models: []string{BenchResNet18}, Width: -2}, "width multiplier -2 must be positive"},
	} {
		if err := tc.cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%+v) = %v, want an error saying %q", tc.cfg, err, tc.want)
		}
	}
}
