package pipeline

import (
	"context"
	"errors"
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
