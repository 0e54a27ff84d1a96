package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/patchwise-ml/patchwise/augment"
	"github.com/patchwise-ml/patchwise/data"
	"github.com/patchwise-ml/patchwise/nn"
	"github.com/patchwise-ml/patchwise/pipeline/checkpoint"
	"github.com/patchwise-ml/patchwise/pretext"
)

var (
	tinyOnce sync.Once
	tinyDir  string
	tinyErr  error
)

// tinyDataset returns a generated dataset shared by the tests: 256 train
// and 64 val images, 16×16 grey, 2 classes (horizontal and vertical
// gradients with noise).
func tinyDataset(t testing.TB) string {
	tinyOnce.Do(func() {
		dir, err := os.MkdirTemp("", "patchwise-pretrain-test-")
		if err != nil {
			tinyErr = err
			return
		}
		tinyDir = filepath.Join(dir, "ds")
		tinyErr = WriteTinyDataset(tinyDir, 256, 64, 16, 1)
	})
	if tinyErr != nil {
		t.Fatal(tinyErr)
	}
	return tinyDir
}

// WriteTinyDataset writes a generated dataset for tests.
func WriteTinyDataset(dir string, nTrain, nVal, size int, seed uint64) error {
	w, err := data.Create(dir, data.Preprocess{Size: size, Channels: 1}, []string{"h", "v"}, data.Provenance{Format: "generated"})
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(seed, 7))
	pix := make([]uint8, size*size)
	for i := range nTrain + nVal {
		label := i % 2
		for y := range size {
			for x := range size {
				v := x
				if label == 1 {
					v = y
				}
				pix[y*size+x] = uint8(min(255, v*255/size+rng.IntN(40)))
			}
		}
		split := data.Train
		if i >= nTrain {
			split = data.Val
		}
		if err := w.Add(split, data.Record{Pixels: pix, Label: label, Origin: fmt.Sprint("gen#", i)}); err != nil {
			w.Abort()
			return err
		}
	}
	_, _, err = w.Close()
	return err
}

func TestMain(m *testing.M) {
	code := m.Run()
	if tinyDir != "" {
		os.RemoveAll(filepath.Dir(tinyDir))
	}
	os.Exit(code)
}

func tinyConfig(t *testing.T, name string) PretrainConfig {
	return PretrainConfig{
		Dataset: tinyDataset(t), Pretext: name, Out: filepath.Join(t.TempDir(), "run"),
		Steps: 6, Batch: 16, Workers: 2, Seed: 3,
		Config:   pretext.Config{Encoder: pretext.EncoderConfig{Widths: []int{4, 8}}, Hidden: 16},
		ValEvery: 3, ValBatches: 2, CheckpointEvery: 3,
	}
}

func TestPretrainEachPretext(t *testing.T) {
	for _, name := range pretext.Names() {
		t.Run(name, func(t *testing.T) {
			cfg := tinyConfig(t, name)
			res, err := Pretrain(context.Background(), cfg, false, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.Steps != 6 || res.Config.Size != 16 || res.Config.Encoder.Channels != 1 {
				t.Errorf("result %+v", res)
			}
			rs, err := ReadMetrics(filepath.Join(cfg.Out, MetricsFile))
			if err != nil {
				t.Fatal(err)
			}
			var train, val int
			for _, r := range rs {
				if r.IsVal() {
					val++
					// Every metric of the pretext's Spec is reported.
					spec, _ := pretext.Lookup(name)
					for _, m := range spec.Metrics {
						if _, ok := r.Value(m.Key); !ok {
							t.Errorf("val record without %s: %+v", m.Key, r)
						}
					}
				} else {
					train++
					if r.Loss == nil || r.LR == nil || r.SamplesPerS == nil {
						t.Errorf("train record incomplete: %+v", r)
					}
				}
			}
			if train != 6 || val != 2 {
				t.Errorf("%d train and %d val records, want 6 and 2", train, val)
			}
			paths, err := checkpoint.List(cfg.Out)
			if err != nil || len(paths) != 2 {
				t.Fatalf("checkpoints %v, %v", paths, err)
			}
			m, err := checkpoint.ReadManifest(paths[1])
			if err != nil {
				t.Fatal(err)
			}
			if m.Step != 6 || m.Pretext != name || m.Metrics["val_loss"] == 0 {
				t.Errorf("manifest step %d pretext %q metrics %v", m.Step, m.Pretext, m.Metrics)
			}
			saved, err := LoadPretrainConfig(filepath.Join(cfg.Out, TrainConfigFile))
			if err != nil {
				t.Fatal(err)
			}
			if saved.Steps != 6 || saved.Size != 16 || saved.Optimizer != OptimizerSGD || saved.LR != DefaultSGDLR {
				t.Errorf("saved config %+v", saved)
			}
		})
	}
}

// cancelAfter is a Progress that cancels a context once n steps are done.
type cancelAfter struct {
	NoProgress
	n, done int
	cancel  context.CancelFunc
}

func (c *cancelAfter) Add(n int) {
	c.done += n
	if c.done >= c.n {
		c.cancel()
	}
}

func trainLosses(t *testing.T, dir string) []float64 {
	t.Helper()
	rs, err := ReadMetrics(filepath.Join(dir, MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	var ls []float64
	for _, r := range rs {
		if !r.IsVal() {
			if r.Step != len(ls)+1 {
				t.Fatalf("record of step %d after %d steps", r.Step, len(ls))
			}
			ls = append(ls, *r.Loss)
		}
	}
	return ls
}

func TestPretrainResumeExact(t *testing.T) {
	for _, name := range []string{"relpos", "dae-mirrored", "supervised"} {
		t.Run(name, func(t *testing.T) {
			cfg := tinyConfig(t, name)
			cfg.Steps, cfg.CheckpointEvery = 20, 4 // 16 batches an epoch: the resumed part crosses into epoch 1
			cfg.Optimizer = OptimizerAdamW
			if _, err := Pretrain(context.Background(), cfg, false, nil); err != nil {
				t.Fatal(err)
			}
			want := trainLosses(t, cfg.Out)

			cfg.Out = filepath.Join(t.TempDir(), "run2")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			res, err := Pretrain(ctx, cfg, false, &cancelAfter{n: 7, cancel: cancel})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("interrupted run: %v", err)
			}
			if res.Steps != 7 || filepath.Base(res.Checkpoint) != checkpoint.DirName(7) {
				t.Fatalf("interrupted at step %d, checkpoint %q", res.Steps, res.Checkpoint)
			}
			// A torn line past the checkpoint, as a crash might leave.
			f, _ := os.OpenFile(filepath.Join(cfg.Out, MetricsFile), os.O_APPEND|os.O_WRONLY, 0)
			f.WriteString(`{"step":8,"epoch":0,"loss":1`)
			f.Close()

			res, err = Pretrain(context.Background(), PretrainConfig{Out: cfg.Out}, true, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.StartStep != 7 || res.Steps != 20 {
				t.Errorf("resumed from %d to %d", res.StartStep, res.Steps)
			}
			got := trainLosses(t, cfg.Out)
			if len(got) != len(want) {
				t.Fatalf("%d losses, want %d", len(got), len(want))
			}
			for i := range want {
				if got[i] != want[i] {
					t.Errorf("step %d: loss %v, uninterrupted %v", i+1, got[i], want[i])
				}
			}
		})
	}
}

func TestPretrainEpochs(t *testing.T) {
	cfg := tinyConfig(t, "ae-linear")
	cfg.Steps, cfg.Epochs = 0, 1
	res, err := Pretrain(context.Background(), cfg, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Steps != 16 || res.Config.Steps != 16 || res.Config.Epochs != 0 || res.Last.Epoch != 0 {
		t.Errorf("1 epoch of 256 images in batches of 16: %d steps, config %d steps %d epochs, last epoch %d",
			res.Steps, res.Config.Steps, res.Config.Epochs, res.Last.Epoch)
	}
	// The saved config resumes (a finished run: nothing to do).
	if res, err := Pretrain(context.Background(), PretrainConfig{Out: cfg.Out}, true, nil); err != nil || res.StartStep != 16 {
		t.Errorf("resume of a finished run: %v, %+v", err, res)
	}
}

func TestPretrainNaN(t *testing.T) {
	cfg := tinyConfig(t, "supervised")
	cfg.Steps, cfg.CheckpointEvery, cfg.LR, cfg.Warmup = 20, 1, 1e30, -1
	res, err := Pretrain(context.Background(), cfg, false, nil)
	if !errors.Is(err, ErrNonFinite) {
		t.Fatalf("err %v, want ErrNonFinite", err)
	}
	var step int
	if _, serr := fmt.Sscanf(strings.TrimPrefix(err.Error(), "pipeline: pretrain: "), "step %d:", &step); serr != nil || step < 1 || step > res.Steps+1 {
		t.Fatalf("error does not name the step (done %d): %v", res.Steps, err)
	}
	t.Log(err)
	// With no checkpoint due, the loss or the gradient turns non-finite.
	cfg2 := cfg
	cfg2.Out, cfg2.CheckpointEvery = filepath.Join(t.TempDir(), "run2"), -1
	if _, err := Pretrain(context.Background(), cfg2, false, nil); !errors.Is(err, ErrNonFinite) || !strings.Contains(err.Error(), "not finite") {
		t.Errorf("loss path: %v", err)
	} else if _, err := checkpoint.Latest(cfg2.Out); !errors.Is(err, checkpoint.ErrNone) {
		t.Errorf("a checkpoint of the bad state: %v", err)
	}
	latest, lerr := checkpoint.Latest(cfg.Out)
	if lerr != nil {
		t.Logf("no checkpoint before the failure: %v", lerr) // the first step may already fail
		return
	}
	m, err := checkpoint.ReadManifest(latest)
	if err != nil || m.Step >= step {
		t.Errorf("latest checkpoint %q step %v (%v), failing step %d", latest, m, err, step)
	}
}

func TestPretrainRefusesExistingRun(t *testing.T) {
	cfg := tinyConfig(t, "ae-linear")
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := Pretrain(context.Background(), cfg, false, nil)
	if !errors.Is(err, ErrOutExists) || !errors.Is(err, fs.ErrExist) {
		t.Fatalf("err %v, want ErrOutExists", err)
	}
	if _, err := Pretrain(context.Background(), PretrainConfig{Out: filepath.Join(t.TempDir(), "none")}, true, nil); err == nil {
		t.Error("resuming a missing run succeeded")
	}
}

func TestPretrainConfigValidate(t *testing.T) {
	ok := PretrainConfig{Dataset: "ds", Pretext: "relpos", Out: "run"}
	if err := ok.Validate(); err != nil {
		t.Fatalf("minimal config: %v", err)
	}
	for _, c := range []struct {
		name string
		edit func(*PretrainConfig)
		want []string
	}{
		{"empty", func(c *PretrainConfig) { *c = PretrainConfig{} }, []string{"no dataset", "no pretext", "no training directory"}},
		{"unknown pretext", func(c *PretrainConfig) { c.Pretext = "colourise" }, []string{`"colourise"`}},
		{"steps and epochs", func(c *PretrainConfig) { c.Steps, c.Epochs = 5, 2 }, []string{"one or the other"}},
		{"negatives", func(c *PretrainConfig) { c.Batch, c.Workers, c.Steps = -1, -2, -3 }, []string{"batch -1", "workers -2", "steps -3"}},
		{"optimizer", func(c *PretrainConfig) { c.Optimizer = "rmsprop" }, []string{"rmsprop"}},
		{"lr", func(c *PretrainConfig) { c.LR = -1 }, []string{"learning rate"}},
		{"encoder", func(c *PretrainConfig) { c.Encoder.Channels = 2 }, []string{"channels"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := ok
			c.edit(&cfg)
			err := cfg.Validate()
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
		})
	}
	// Errors found once the dataset is open, by the pretext's Spec, are
	// invalid configs too, and leave nothing behind.
	for _, c := range []struct {
		name, pretext, want string
		edit                func(*PretrainConfig)
	}{
		{"size", "ae-mirrored", "multiples of 4", func(c *PretrainConfig) { c.Size = 18 }},
		{"corruption", "dae-tied", "blur", func(c *PretrainConfig) { c.Corruption.Kind = "blur" }},
		{"geometry", "relpos", "largest patch", func(c *PretrainConfig) { c.Pairs.Patch = 12 }},
		{"transform", "relpos", "rainbow", func(c *PretrainConfig) { c.Transform = &augment.Transform{Color: "rainbow"} }},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := tinyConfig(t, c.pretext)
			c.edit(&cfg)
			_, err := Pretrain(context.Background(), cfg, false, nil)
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%v, want ErrInvalidConfig mentioning %q", err, c.want)
			}
			if _, err := os.Stat(cfg.Out); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("a refused config left %q", cfg.Out)
			}
		})
	}
}

func TestLoadPretrainConfigUnknownField(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.json")
	os.WriteFile(path, []byte(`{"pretext":"relpos","stepz":4}`), 0o644)
	if _, err := LoadPretrainConfig(path); err == nil || !strings.Contains(err.Error(), "stepz") {
		t.Errorf("unknown field: %v", err)
	}
	os.WriteFile(path, []byte(`{"pretext":"relpos","steps":4,"transform":{"normalize":"mean"}}`), 0o644)
	c, err := LoadPretrainConfig(path)
	if err != nil || c.Steps != 4 || c.Transform == nil {
		t.Errorf("config %+v, %v", c, err)
	}
}

// A validation loss that overflows while the training losses stay finite
// (evaluation mode uses running statistics that lag behind the weights)
// stops the run with ErrNonFinite naming the validation, not with an
// encoding error.
func TestPretrainValidationNonFinite(t *testing.T) {
	cfg := tinyConfig(t, "ae-tied")
	cfg.LR, cfg.Warmup, cfg.ValEvery = 10, -1, 1
	_, err := Pretrain(context.Background(), cfg, false, nil)
	if !errors.Is(err, ErrNonFinite) || !strings.Contains(err.Error(), "step 2: validation loss") {
		t.Fatalf("err %v, want ErrNonFinite at the validation of step 2", err)
	}
}

func TestClipGradients(t *testing.T) {
	a := &nn.Param{Name: "a", Value: nn.NewTensor(2), Grad: nn.NewTensor(2)}
	b := &nn.Param{Name: "b", Value: nn.NewTensor(1), Grad: nn.NewTensor(1)}
	buf := &nn.Param{Name: "buf", Value: nn.NewTensor(1)} // no gradient
	set := func() { copy(a.Grad.Data, []float32{3, 0}); b.Grad.Data[0] = 4 }
	set()
	if n := clipGradients([]*nn.Param{a, b, buf}, 0); n != 5 || a.Grad.Data[0] != 3 {
		t.Errorf("no clipping: norm %v, grads %v %v", n, a.Grad.Data, b.Grad.Data)
	}
	if n := clipGradients([]*nn.Param{a, b}, 10); n != 5 || b.Grad.Data[0] != 4 {
		t.Errorf("below the bound: norm %v, grads %v %v", n, a.Grad.Data, b.Grad.Data)
	}
	if n := clipGradients([]*nn.Param{a, b}, 1); n != 5 || math.Abs(float64(a.Grad.Data[0])-0.6) > 1e-6 || math.Abs(float64(b.Grad.Data[0])-0.8) > 1e-6 {
		t.Errorf("clipped to 1: norm %v, grads %v %v", n, a.Grad.Data, b.Grad.Data)
	}
	cfg := tinyConfig(t, "ae-tied")
	for _, bad := range []float64{-1, math.Inf(1), math.NaN()} {
		cfg.GradClip = bad
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "grad_clip") {
			t.Errorf("grad_clip %v: %v", bad, err)
		}
	}
	// A tied autoencoder at a learning rate that makes it diverge within
	// a few steps trains when its gradient is clipped.
	cfg = tinyConfig(t, "ae-tied")
	cfg.LR, cfg.Warmup, cfg.Steps = 10, -1, 6
	if _, err := Pretrain(context.Background(), cfg, false, nil); !errors.Is(err, ErrNonFinite) {
		t.Fatalf("unclipped: %v, want a divergence", err)
	}
	cfg.Out, cfg.GradClip = filepath.Join(t.TempDir(), "clipped"), 1
	if _, err := Pretrain(context.Background(), cfg, false, nil); err != nil {
		t.Errorf("clipped: %v", err)
	}
}
