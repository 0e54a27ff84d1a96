package pipeline

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/patchwise-ml/patchwise/augment"
	"github.com/patchwise-ml/patchwise/data"
	"github.com/patchwise-ml/patchwise/nn"
	"github.com/patchwise-ml/patchwise/nn/safetensors"
	"github.com/patchwise-ml/patchwise/pipeline/checkpoint"
	"github.com/patchwise-ml/patchwise/pretext"
	"github.com/patchwise-ml/patchwise/probe"
)

// The pretext defined here, and nowhere else, proves that the pipeline
// takes any registered pretext through pretraining, checkpoints, resume,
// probing, export and a run's report without knowing its name: its
// sampler darkens each image by one of three factors, and its model (the
// shared encoder and a linear head) tells which.
const brightnessName = "test-brightness"

// brightnessFactors are the factors the sampler scales images by; the
// label is the factor's index.
var brightnessFactors = []float32{1, 0.6, 0.25}

func init() {
	pretext.Register(pretext.Spec{
		Name:      brightnessName,
		Summary:   "which of three brightness factors darkened the image",
		Reference: "a pipeline test",
		Metrics:   []pretext.Metric{{Key: "acc", Title: "brightness accuracy", Percent: true}, {Key: "darkest", Title: "darkest share", EvalOnly: true}},
		Sampler: func(c pretext.Config, side, ch int, train bool) (augment.Sampler, error) {
			return brightnessSampler{side: side, size: c.Size, ch: ch}, nil
		},
		New: func(c pretext.Config, rng *rand.Rand) (pretext.Model, error) {
			e := pretext.NewEncoder("encoder", c.Encoder, rng)
			return &brightnessModel{enc: e, gap: nn.NewGlobalAvgPool(), head: nn.NewLinear("head", e.Dim(), len(brightnessFactors), rng)}, nil
		},
		Normalize: func(pretext.Config) string { return augment.NormMean },
	})
}

type brightnessSampler struct{ side, size, ch int }

func (s brightnessSampler) Views() []augment.View {
	return []augment.View{{Name: "darkened image", Count: 1, Side: s.size}}
}
func (brightnessSampler) Labels() int                 { return 1 }
func (s brightnessSampler) NewDrawer() augment.Drawer { return s }

func (s brightnessSampler) Draw(img augment.Image, rng *rand.Rand, out augment.Sample) error {
	k := rng.IntN(len(brightnessFactors))
	src := augment.NewPatch(img.Side, img.Side, img.C)
	for i, v := range img.Pix {
		src.Pix[i] = float32(v) / 255 * brightnessFactors[k]
	}
	augment.Resize(augment.Patch{Pix: out.Views[0], W: s.size, H: s.size, C: img.C}, src)
	out.Labels[0] = k
	return nil
}

type brightnessModel struct {
	enc  *pretext.Encoder
	gap  *nn.GlobalAvgPool
	head *nn.Linear
	loss nn.SoftmaxCrossEntropy
}

func (m *brightnessModel) Step(b pretext.Batch, train bool) pretext.Metrics {
	logits := m.head.Forward(m.gap.Forward(m.enc.Forward(b.Views[0], train), train), train)
	loss, acc := m.loss.Forward(logits, b.Labels)
	if train {
		m.enc.Backward(m.gap.Backward(m.head.Backward(m.loss.Backward())))
		return pretext.Metrics{Loss: loss, Values: map[string]float64{"acc": acc}}
	}
	darkest := 0
	for _, l := range b.Labels {
		if l == len(brightnessFactors)-1 {
			darkest++
		}
	}
	return pretext.Metrics{Loss: loss, Values: map[string]float64{"acc": acc, "darkest": float64(darkest) / float64(len(b.Labels))}}
}

func (m *brightnessModel) Params() []*nn.Param       { return append(m.enc.Params(), m.head.Params()...) }
func (m *brightnessModel) Buffers() []*nn.Param      { return m.enc.Buffers() }
func (m *brightnessModel) Encoder() *pretext.Encoder { return m.enc }

// TestPretextDefinedElsewhere takes the test's own pretext through
// pretraining, an interruption and its resume, probing, export and a run.
func TestPretextDefinedElsewhere(t *testing.T) {
	cfg := tinyConfig(t, brightnessName)
	cfg.Steps, cfg.CheckpointEvery, cfg.ValEvery = 40, 8, 20
	cfg.Optimizer, cfg.LR = OptimizerAdamW, 1e-2
	res, err := Pretrain(context.Background(), cfg, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := trainLosses(t, cfg.Out)
	if res.LastVal == nil || res.LastVal.Values["acc"] < 0.5 || res.LastVal.Values["darkest"] == 0 {
		t.Errorf("last validation %+v: the model did not learn brightness, or its metrics are lost", res.LastVal)
	}
	if acc, ok := res.Last.Value("acc"); !ok || acc == 0 {
		t.Errorf("last training record %+v", res.Last)
	}

	// Interrupted after 5 steps and resumed: the same losses.
	cfg2 := cfg
	cfg2.Out = filepath.Join(t.TempDir(), "run2")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := Pretrain(ctx, cfg2, false, &cancelAfter{n: 13, cancel: cancel}); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted: %v", err)
	}
	if _, err := Pretrain(context.Background(), PretrainConfig{Out: cfg2.Out}, true, nil); err != nil {
		t.Fatal(err)
	}
	if got := trainLosses(t, cfg2.Out); !slices.Equal(got, want) {
		t.Errorf("resumed losses %v, uninterrupted %v", got, want)
	}

	// The encoder loads from the checkpoint, normalised as the Spec says,
	// and probes.
	fe, err := LoadEncoder(cfg.Out)
	if err != nil {
		t.Fatal(err)
	}
	if fe.Pretext != brightnessName || fe.Normalize != augment.NormMean || fe.Step != 40 {
		t.Errorf("frozen encoder %+v", fe)
	}
	ds, err := data.Open(cfg.Dataset)
	if err != nil {
		t.Fatal(err)
	}
	pr, err := Probe(context.Background(), ProbeRequest{Encoder: fe, Train: ds, Test: ds,
		Config: ProbeConfig{Protocol: probe.Config{Grid: []float64{1e-3}}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if pr.LinearTop1 < 0.8 {
		t.Errorf("linear probe %.3f on the two gradient directions", pr.LinearTop1)
	}

	// Export: the encoder's tensors, whatever the pretext.
	out := filepath.Join(t.TempDir(), "enc.safetensors")
	info, err := ExportEncoder(cfg.Out, out, ExportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ts, meta, err := safetensors.Read(out)
	if err != nil {
		t.Fatal(err)
	}
	if meta["pretext"] != brightnessName || meta["input_normalize"] != augment.NormMean || len(ts) != info.Tensors {
		t.Errorf("export metadata %v, %d tensors", meta, len(ts))
	}
	ckpt, _ := checkpoint.Latest(cfg.Out)
	if info.Checkpoint != ckpt {
		t.Errorf("exported %q, latest checkpoint %q", info.Checkpoint, ckpt)
	}

	// A run compares it with the random encoder and reports its metrics.
	dir := filepath.Join(t.TempDir(), "run")
	run := RunConfig{
		Out:      dir,
		Dataset:  DatasetSpec{Path: cfg.Dataset},
		Pretexts: []string{brightnessName, BaselineRandom},
		Seeds:    []uint64{1},
		Pretrain: PretrainConfig{Steps: 6, Batch: 16, Workers: 2, Config: cfg.Config, ValEvery: -1, ValBatches: 2},
		Probe:    ProbeConfig{Protocol: probe.Config{Grid: []float64{1e-3}}},
	}
	rep, err := Run(context.Background(), run, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rows) != 2 || rep.Rows[0].Pretext != brightnessName || rep.Rows[0].Seeds != 1 {
		t.Fatalf("rows %+v", rep.Rows)
	}
	tr := rep.Entries[0].Training
	if tr == nil || tr.ValValues["darkest"] == 0 {
		t.Errorf("training summary %+v", tr)
	}
	md, err := os.ReadFile(filepath.Join(dir, ReportMDFile))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(md), "brightness accuracy") {
		t.Errorf("report.md does not show the pretext's metric:\n%s", md)
	}
}
