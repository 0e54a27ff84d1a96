package pretext

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/patchwise-ml/patchwise/augment"
	"github.com/patchwise-ml/patchwise/nn"
)

func TestSimCLRResolve(t *testing.T) {
	spec, err := Lookup("simclr")
	if err != nil {
		t.Fatal(err)
	}
	// Defaults: the head as wide as the feature, the projection at most
	// 128, the paper's views with the small-image crop scale.
	for _, tc := range []struct {
		widths      []int
		hidden, out int
	}{{[]int{4, 8}, 8, 8}, {nil, 256, 128}, {[]int{16, 32, 64, 128}, 128, 128}} {
		c := tinyConfig()
		c.Encoder.Widths, c.Size = tc.widths, 0
		got, err := spec.Resolve(c, 28, 1)
		if err != nil {
			t.Fatal(err)
		}
		s := got.SimCLR
		if s.Hidden != tc.hidden || s.Out != tc.out || s.Temperature != DefaultTemperature || s.Views == nil ||
			!reflect.DeepEqual(*s.Views, augment.SimCLRViews()) {
			t.Errorf("widths %v: resolved %+v, views %+v", tc.widths, s, s.Views)
		}
		// The resolved config survives JSON.
		b, err := json.Marshal(got)
		if err != nil {
			t.Fatal(err)
		}
		var back Config
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back.SimCLR, got.SimCLR) {
			t.Errorf("JSON round trip: %+v, want %+v", back.SimCLR, got.SimCLR)
		}
	}
	// Explicit settings are kept.
	c := tinyConfig()
	views := augment.ViewConfig{Scale: [2]float64{0.5, 1}, Flip: 0.5}
	c.SimCLR = SimCLRConfig{Views: &views, Hidden: 5, Out: 3, Temperature: 0.1}
	got, err := spec.Resolve(c, tinySide, 1)
	if err != nil {
		t.Fatal(err)
	}
	if s := got.SimCLR; s.Hidden != 5 || s.Out != 3 || s.Temperature != 0.1 || *s.Views != views {
		t.Errorf("resolved %+v", s)
	}
	// Every problem at once, the sampler's included.
	c.SimCLR = SimCLRConfig{Hidden: -1, Out: -2, Temperature: -0.5}
	if _, err := spec.Resolve(c, tinySide, 1); err == nil ||
		!strings.Contains(err.Error(), "hidden width -1") || !strings.Contains(err.Error(), "projection width -2") ||
		!strings.Contains(err.Error(), "temperature -0.5") {
		t.Errorf("bad head and temperature: %v", err)
	}
	c.SimCLR = SimCLRConfig{Views: &augment.ViewConfig{Scale: [2]float64{0.5, 2}}}
	if _, err := spec.Resolve(c, tinySide, 1); err == nil || !strings.Contains(err.Error(), "scale [0.5 2]") {
		t.Errorf("bad views: %v", err)
	}
}

func TestSimCLRStep(t *testing.T) {
	cfg := tinyConfig()
	m := mustNew(t, "simclr", cfg, 3).(*SimCLR)
	b := tinyBatch("simclr", cfg, 5, rand.New(rand.NewPCG(1, 1)))
	if got := b.Views[0].Shape; got[0] != 10 {
		t.Fatalf("5 samples make views %v, want 10 rows", got)
	}
	for _, train := range []bool{true, false} {
		r := m.Step(b, train)
		if c := r.Values["top1_chance"]; math.Abs(c-1.0/9) > 1e-12 {
			t.Errorf("train %v: chance %g, want 1/9", train, c)
		}
		if v, ok := r.Values["top1"]; !ok || v < 0 || v > 1 {
			t.Errorf("train %v: top1 %v", train, r.Values)
		}
		// The loss is NT-Xent of the embeddings.
		var l nn.NTXent
		l.Temperature = DefaultTemperature
		want, top1 := l.Forward(m.Embed(b.Views[0], false).Clone())
		if !train && (math.Abs(r.Loss-want) > 1e-9 || r.Values["top1"] != top1) {
			t.Errorf("evaluation loss %v top-1 %v, NT-Xent of the embeddings %v and %v", r.Loss, r.Values["top1"], want, top1)
		}
	}
	// Every declared metric is reported; the baseline is one of them.
	spec, _ := Lookup("simclr")
	r := m.Step(b, false)
	for _, mt := range spec.Metrics {
		if _, ok := r.Values[mt.Key]; !ok {
			t.Errorf("metric %q not reported", mt.Key)
		}
	}
	if spec.Metrics[0].Baseline != spec.Metrics[1].Key {
		t.Errorf("metrics %+v", spec.Metrics)
	}
}

// TestSimCLRPairsViews: the model pairs rows as the sampler lays the
// views out. With views that are the whole image and nothing else, each
// image's two views are identical, so their embeddings are too, and every
// row finds its positive.
func TestSimCLRPairsViews(t *testing.T) {
	cfg := tinyConfig()
	cfg.SimCLR.Views = &augment.ViewConfig{Scale: [2]float64{1, 1}, Ratio: [2]float64{1, 1}}
	m := mustNew(t, "simclr", cfg, 4)
	b := tinyBatch("simclr", cfg, 16, rand.New(rand.NewPCG(2, 2)))
	m.Step(b, true) // running statistics
	if r := m.Step(b, false); r.Values["top1"] != 1 {
		t.Errorf("identical views: top-1 %v, want 1", r.Values["top1"])
	}
	// Shift the second views by one sample: now no row's twin is its
	// positive.
	x := b.Views[0]
	per := x.Len() / x.Shape[0]
	shifted := x.Clone()
	for i := range 16 {
		j := (i + 1) % 16
		copy(shifted.Data[(2*i+1)*per:(2*i+2)*per], x.Data[(2*j+1)*per:(2*j+2)*per])
	}
	if r := m.Step(Batch{Views: []*nn.Tensor{shifted}}, false); r.Values["top1"] > 0.25 {
		t.Errorf("mismatched views: top-1 %v", r.Values["top1"])
	}
}
