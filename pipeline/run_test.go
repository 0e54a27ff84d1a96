package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/patchwise-ml/patchwise/data"
	"github.com/patchwise-ml/patchwise/pretext"
	"github.com/patchwise-ml/patchwise/probe"
)

// tinyRun is a run on the embedded MNIST subset with a tiny encoder, small
// enough for a unit test.
func tinyRun(out string) RunConfig {
	return RunConfig{
		Out:      out,
		Dataset:  DatasetSpec{Builtin: "mnist-small"},
		Pretexts: []string{"ae-linear", BaselineRandom},
		Seeds:    []uint64{1},
		Pretrain: PretrainConfig{Steps: 8, Batch: 32, Workers: 2, Config: pretext.Config{Encoder: pretext.EncoderConfig{Widths: []int{4, 8}}},
			ValEvery: -1, ValBatches: 2, CheckpointEvery: 3, KeepLast: 1},
		Probe: ProbeConfig{Protocol: probe.Config{Grid: []float64{1e-4, 1e-2}}},
	}
}

// logProgress records the log lines and cancels after cancelAfter units
// of pretraining progress (0: never).
type logProgress struct {
	NoProgress
	lines       []string
	what        string
	units       int
	cancelAfter int
	cancel      context.CancelFunc
}

func (p *logProgress) Log(line string)              { p.lines = append(p.lines, line) }
func (p *logProgress) Start(what string, total int) { p.what = what }
func (p *logProgress) Add(n int) {
	if strings.HasPrefix(p.what, "pretrain") {
		p.units += n
		if p.cancelAfter > 0 && p.units >= p.cancelAfter {
			p.cancel()
		}
	}
}

func TestRunSkipsFinishedStages(t *testing.T) {
	cfg := tinyRun(filepath.Join(t.TempDir(), "run"))
	p := &logProgress{}
	rep, err := Run(context.Background(), cfg, p)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rows) != 2 || rep.Rows[0].Pretext != "ae-linear" || rep.Rows[1].Pretext != BaselineRandom || rep.Rows[0].Seeds != 1 {
		t.Fatalf("rows %+v", rep.Rows)
	}
	for _, r := range rep.Rows {
		if !(r.Linear.Mean > 0.3 && r.Linear.Mean <= 1) || !(r.KNN20.Mean > 0.3) {
			t.Errorf("%s: linear %v, k-NN %v: no better than chance on MNIST", r.Pretext, r.Linear, r.KNN20)
		}
	}
	digits := []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}
	for _, e := range rep.Entries {
		if got := e.Probes[0].Result.Classes; !reflect.DeepEqual(got, digits) {
			t.Errorf("%s: probe result's classes %q, want the digits", e.Pretext, got)
		}
	}
	if len(rep.Rows[0].PerClass) != 10 || !reflect.DeepEqual(rep.Datasets[0].Classes, digits) {
		t.Errorf("per-class stats %v, dataset classes %q", rep.Rows[0].PerClass, rep.Datasets[0].Classes)
	}
	for _, f := range []string{ReportJSONFile, ReportMDFile, AccuracyPlot, PerClassPlot, CurvesPlot, RunManifestFile} {
		if _, err := os.Stat(filepath.Join(cfg.Out, f)); err != nil {
			t.Error(err)
		}
	}
	first, err := os.ReadFile(filepath.Join(cfg.Out, ReportJSONFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range p.lines {
		if strings.Contains(l, "skipped") {
			t.Errorf("first run skipped a stage: %q", l)
		}
	}

	p2 := &logProgress{}
	if _, err := Run(context.Background(), cfg, p2); err != nil {
		t.Fatal(err)
	}
	if len(p2.lines) != 4 { // pretrain, probe ae-linear, probe random, budget
		t.Errorf("second run logged %q", p2.lines)
	}
	for _, l := range p2.lines {
		if !strings.Contains(l, "finished earlier, skipped") {
			t.Errorf("second run did not skip: %q", l)
		}
	}
	second, err := os.ReadFile(filepath.Join(cfg.Out, ReportJSONFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, second) {
		t.Error("the second run's report.json differs from the first's")
	}
	var man RunManifest
	if b, err := os.ReadFile(filepath.Join(cfg.Out, RunManifestFile)); err != nil || json.Unmarshal(b, &man) != nil {
		t.Fatalf("run.json: %v", err)
	}
	if !man.Finished || man.Patchwise == "" || man.Go == "" || len(man.Datasets) != 1 || len(man.Stages) != 4 {
		t.Errorf("run.json %+v", man)
	}

	// Another worker count is the same configuration.
	workers := cfg
	workers.Pretrain.Workers = 1
	if _, err := Run(context.Background(), workers, nil); err != nil {
		t.Errorf("another worker count: %v", err)
	}

	// Another configuration in the same directory is refused.
	other := cfg
	other.Seeds = []uint64{2}
	if _, err := Run(context.Background(), other, nil); !errors.Is(err, ErrRunConfigChanged) {
		t.Errorf("another config: %v, want ErrRunConfigChanged", err)
	}

	// The random row is what a probe of RandomEncoder gives on the same
	// data and seed.
	ds, err := data.Open(filepath.Join(cfg.Out, "datasets", "mnist-small"))
	if err != nil {
		t.Fatal(err)
	}
	enc, err := RandomEncoder(pretext.EncoderConfig{Channels: 1, Widths: []int{4, 8}}, 28, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	pc := cfg.Probe
	pc.Protocol.Seed = 1
	res, err := Probe(context.Background(), ProbeRequest{Encoder: enc, Train: ds, Test: ds, Config: pc}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := rep.Entries[1].Probes[0].Result
	if !reflect.DeepEqual(got, res) {
		t.Errorf("random row %+v\nprobe of the random encoder %+v", got, res)
	}
}

func TestRunResumesInterruptedPretraining(t *testing.T) {
	base := t.TempDir()
	whole, err := Run(context.Background(), tinyRun(filepath.Join(base, "whole")), nil)
	if err != nil {
		t.Fatal(err)
	}

	cfg := tinyRun(filepath.Join(base, "cut"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := &logProgress{cancelAfter: 5, cancel: cancel}
	if _, err := Run(ctx, cfg, p); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: %v", err)
	}
	p2 := &logProgress{}
	rep, err := Run(context.Background(), cfg, p2)
	if err != nil {
		t.Fatal(err)
	}
	if len(p2.lines) == 0 || !strings.Contains(p2.lines[0], "resuming from ckpt-step-") {
		t.Errorf("log %q: want a resumption", p2.lines)
	}
	if !reflect.DeepEqual(rep.Rows, whole.Rows) {
		t.Errorf("resumed rows %+v\nuninterrupted %+v", rep.Rows, whole.Rows)
	}
	if a, b := rep.Entries[0].Training.Curve, whole.Entries[0].Training.Curve; !reflect.DeepEqual(a, b) {
		t.Errorf("resumed curve %v\nuninterrupted %v", a, b)
	}
}

func TestRunConfigValidate(t *testing.T) {
	good := tinyRun("out")
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	// A path "builtin:NAME" is the embedded dataset NAME.
	good.Dataset = DatasetSpec{Path: "builtin:mnist-small"}
	if err := good.Validate(); err != nil || good.Dataset.name() != "mnist-small" {
		t.Fatalf("path builtin:mnist-small: %v, name %q", err, good.Dataset.name())
	}
	for name, mod := range map[string]func(*RunConfig){
		"no out":         func(c *RunConfig) { c.Out = "" },
		"no dataset":     func(c *RunConfig) { c.Dataset = DatasetSpec{} },
		"two sources":    func(c *RunConfig) { c.Dataset.Path = "x" },
		"unknown":        func(c *RunConfig) { c.Dataset.Builtin = "cifar" },
		"no pretexts":    func(c *RunConfig) { c.Pretexts = nil },
		"bad pretext":    func(c *RunConfig) { c.Pretexts = []string{"no-such-pretext"} },
		"twice":          func(c *RunConfig) { c.Pretexts = []string{"random", "random"} },
		"seeds repeat":   func(c *RunConfig) { c.Seeds = []uint64{1, 1} },
		"pretrain seed":  func(c *RunConfig) { c.Pretrain.Seed = 3 },
		"bad steps":      func(c *RunConfig) { c.Pretrain.Steps = -1 },
		"stage too deep": func(c *RunConfig) { c.Probe.Stage = 3 },
		"same names": func(c *RunConfig) {
			c.Transfer = []DatasetSpec{{Builtin: "mnist-small"}}
		},
		"same names, builtin path": func(c *RunConfig) {
			c.Transfer = []DatasetSpec{{Path: "builtin:mnist-small"}}
		},
		"unknown builtin path": func(c *RunConfig) { c.Dataset = DatasetSpec{Path: "builtin:cifar"} },
		"empty builtin path":   func(c *RunConfig) { c.Dataset = DatasetSpec{Path: "builtin:"} },
		"builtin path and builtin": func(c *RunConfig) {
			c.Dataset = DatasetSpec{Path: "builtin:mnist-small", Builtin: "mnist-small"}
		},
		"repeated class name": func(c *RunConfig) {
			c.Dataset = DatasetSpec{Ingest: &IngestSpec{Inputs: []string{"x"}, Classes: []string{"a", "a"}}}
		},
	} {
		c := tinyRun("out")
		mod(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestLoadRunConfigExample(t *testing.T) {
	cfg, err := LoadRunConfig("../examples/run.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.Dataset.Ingest == nil || len(cfg.Pretexts) != 4 || cfg.Pretrain.Steps != 1000 {
		t.Errorf("example config read as %+v", cfg)
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`{"out": "x", "pretexts": ["relpos"], "dataset": {"builtin": "mnist-small"}, "stpes": 3}`), 0o644)
	if _, err := LoadRunConfig(bad); err == nil || !strings.Contains(err.Error(), "stpes") {
		t.Errorf("unknown field: %v", err)
	}
}

// A pretraining that diverges is reported and the others go on.
func TestRunReportsDivergence(t *testing.T) {
	cfg := tinyRun(filepath.Join(t.TempDir(), "run"))
	cfg.Pretexts = []string{"ae-tied", BaselineRandom}
	// It diverges after a checkpoint, which its error names.
	cfg.Pretrain.LR, cfg.Pretrain.Warmup, cfg.Pretrain.Steps, cfg.Pretrain.CheckpointEvery = 1, -1, 8, 1
	rep, err := Run(context.Background(), cfg, nil)
	if !errors.Is(err, ErrNonFinite) || !strings.Contains(err.Error(), "1 of 2 pretrainings diverged") {
		t.Fatalf("err %v, want a divergence", err)
	}
	if rep == nil || rep.Rows[0].Failed != 1 || rep.Rows[0].Seeds != 0 || rep.Rows[1].Seeds != 1 || rep.Entries[0].Error == "" {
		t.Fatalf("report %+v", rep)
	}
	md, err := os.ReadFile(filepath.Join(cfg.Out, ReportMDFile))
	if err != nil || !strings.Contains(string(md), "ae-tied: the pretraining of 1 of 1 seeds diverged") {
		t.Errorf("report.md (%v):\n%s", err, md)
	}
	first, err := os.ReadFile(filepath.Join(cfg.Out, ReportJSONFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(first, []byte(`the last good checkpoint is \"pretrain/ae-tied-seed1-`)) {
		t.Errorf("report.json does not name the checkpoint relative to the run directory:\n%s", first)
	}
	// Run again, it reports the divergence without training again; run
	// elsewhere, it writes the same report.json.
	p := &logProgress{}
	if _, err := Run(context.Background(), cfg, p); !errors.Is(err, ErrNonFinite) || err.Error() != rep2err(t, cfg) {
		t.Errorf("again: %v", err)
	}
	for _, l := range p.lines {
		if strings.Contains(l, "resuming") {
			t.Errorf("the diverged pretraining trained again: %q", l)
		}
	}
	again, _ := os.ReadFile(filepath.Join(cfg.Out, ReportJSONFile))
	firstDir := cfg.Out
	cfg.Out = filepath.Join(t.TempDir(), "elsewhere")
	if _, err := Run(context.Background(), cfg, nil); !errors.Is(err, ErrNonFinite) {
		t.Fatal(err)
	}
	elsewhere, _ := os.ReadFile(filepath.Join(cfg.Out, ReportJSONFile))
	if !bytes.Equal(first, again) || !bytes.Equal(first, elsewhere) || bytes.Contains(first, []byte(firstDir)) {
		t.Errorf("report.json of the diverged run differs when run again or elsewhere, or names the run directory:\n%s", first)
	}
}

// rep2err is the error Run returned for cfg's diverged run, as the first
// run saved it.
func rep2err(t *testing.T, cfg RunConfig) string {
	t.Helper()
	dirs, _ := filepath.Glob(filepath.Join(cfg.Out, "pretrain", "ae-tied-seed1-*"))
	if len(dirs) != 1 {
		t.Fatalf("training directories %q", dirs)
	}
	b, err := os.ReadFile(filepath.Join(dirs[0], DivergedFile))
	if err != nil {
		t.Fatal(err)
	}
	return "pipeline: run: 1 of 2 pretrainings diverged; the report has the others:\npipeline: run: pretrain ae-tied seed 1: " + strings.TrimSpace(string(b))
}

// A run ingests a folder of images once, again when a file changes.
func TestRunIngestsFolder(t *testing.T) {
	dir := t.TempDir()
	photos := filepath.Join(dir, "photos")
	for c, class := range []string{"h", "v"} {
		if err := os.MkdirAll(filepath.Join(photos, class), 0o755); err != nil {
			t.Fatal(err)
		}
		for i := range 24 {
			img := image.NewGray(image.Rect(0, 0, 20, 20))
			for y := range 20 {
				for x := range 20 {
					v := x
					if c == 1 {
						v = y
					}
					img.Pix[y*20+x] = uint8(v*12 + (i*7+x*y)%30)
				}
			}
			f, err := os.Create(filepath.Join(photos, class, fmt.Sprintf("%02d.png", i)))
			if err != nil {
				t.Fatal(err)
			}
			if err := png.Encode(f, img); err != nil {
				t.Fatal(err)
			}
			f.Close()
		}
	}
	cfg := RunConfig{
		Out: filepath.Join(dir, "run"),
		Dataset: DatasetSpec{Ingest: &IngestSpec{Inputs: []string{photos}, Preprocess: data.Preprocess{Size: 16, Channels: 1}, ValFraction: 0.25, Seed: 1,
			Classes: []string{"horizontal", "vertical"}}},
		Pretexts: []string{BaselineRandom, BaselinePixels},
		Pretrain: PretrainConfig{Config: pretext.Config{Encoder: pretext.EncoderConfig{Widths: []int{4}}}},
		Probe:    ProbeConfig{Protocol: probe.Config{Grid: []float64{1e-2}, ValFraction: 0.25}},
	}
	p := &logProgress{}
	rep, err := Run(context.Background(), cfg, p)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.lines) == 0 || !strings.HasPrefix(p.lines[0], "[1/3] ingest photos: done") {
		t.Fatalf("log %q", p.lines)
	}
	if got := rep.Entries[0].Probes[0].Result.Classes; !reflect.DeepEqual(got, []string{"horizontal", "vertical"}) {
		t.Errorf("classes %q, want the names given to the ingest", got)
	}
	if got := rep.Entries[0].Probes[0].Result.Protocol.TestSplit; got != data.Val {
		t.Errorf("a folder without a test split was scored on %q, want %q", got, data.Val)
	}
	if acc := rep.Rows[1].Linear.Mean; acc < 0.9 {
		t.Errorf("pixels separate horizontal from vertical gradients with top-1 %v", acc)
	}
	p = &logProgress{}
	if _, err := Run(context.Background(), cfg, p); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(p.lines[0], "[1/3] ingest photos: finished earlier, skipped") {
		t.Errorf("rerun log %q", p.lines)
	}
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(filepath.Join(photos, "h", "00.png"), later, later); err != nil {
		t.Fatal(err)
	}
	p = &logProgress{}
	if _, err := Run(context.Background(), cfg, p); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(p.lines[0], "[1/3] ingest photos: done") {
		t.Errorf("a changed input was not ingested again: %q", p.lines)
	}
}

// FuzzLoadRunConfig: any file gives a config or an error, never a panic,
// and a config that loads validates without panicking.
func FuzzLoadRunConfig(f *testing.F) {
	if b, err := os.ReadFile("../examples/run.json"); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`{"out": "x", "dataset": {"builtin": "mnist-small"}, "pretexts": ["relpos", "random"], "seeds": [1, 2]}`))
	f.Add([]byte("// only a comment\n"))
	f.Add([]byte(`{"pretrain": {"steps": -1, "grad_clip": 1e400}}`))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(dir, "run.json")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := LoadRunConfig(path)
		if err != nil {
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		_ = cfg.Validate()
		_ = cfg.stages()
	})
}

// TestReportPerClass checks the per-class statistics over seeds, the
// per-class table of report.md by class name (escaped for Markdown) and
// the per-class plot.
func TestReportPerClass(t *testing.T) {
	cfg := RunConfig{Pretexts: []string{"relpos", BaselinePixels}, Seeds: []uint64{1, 2}}
	datasets := []RunDataset{
		{Name: "fm", Classes: []string{"T-shirt/top", "Bag|strap", "Ankle boot"}},
		{Name: "old"}, // a dataset whose names a run did not record
	}
	result := func(acc ...float64) *probe.Result {
		return &probe.Result{LinearTop1: acc[0], PerClass: acc}
	}
	entries := []ReportEntry{
		{Pretext: "relpos", Seed: 1, Probes: []ReportProbe{{Dataset: "fm", Result: result(0.5, 0.25, 1)}, {Dataset: "old", Result: result(0.5, 0.5)}}},
		{Pretext: "relpos", Seed: 2, Probes: []ReportProbe{{Dataset: "fm", Result: result(0.7, 0.75, 0)}, {Dataset: "old", Result: result(0.5, 0.5)}}},
		{Pretext: BaselinePixels, Seed: 1, Probes: []ReportProbe{{Dataset: "fm", Result: result(0.1, 0.2, 0.3)}, {Dataset: "old", Result: result(1, 0)}}},
		{Pretext: BaselinePixels, Seed: 2, Error: "diverged"},
	}
	rep := newReport(cfg, datasets, entries)
	got := rep.Rows[0].PerClass
	if len(got) != 3 || got[0].Mean != 0.6 || got[1].Mean != 0.5 || got[2].N != 2 || math.Abs(got[2].Std-math.Sqrt(0.5)) > 1e-12 {
		t.Errorf("relpos on fm: per-class %+v", got)
	}
	md := rep.Markdown()
	for _, want := range []string{
		"## Per-class accuracy",
		"### fm\n\n| class | relpos | pixels |\n|---|---:|---:|\n",
		"| T-shirt/top | 60.0 | 10.0 |\n",
		`| Bag\|strap | 50.0 | 20.0 |`,
		"| Ankle boot | 50.0 | 30.0 |\n",
		"### old\n\n| class | relpos | pixels |\n|---|---:|---:|\n| 0 | 50.0 | 100.0 |\n| 1 | 50.0 | 0.0 |\n",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report.md lacks %q:\n%s", want, md)
		}
	}
	dir := t.TempDir()
	rep.Datasets[0].ID, rep.Datasets[1].ID = "a", "b"
	if err := rep.write(dir); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, PerClassPlot))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := png.Decode(f); err != nil {
		t.Errorf("%s: %v", PerClassPlot, err)
	}
	bars := rep.perClassBars()
	if len(bars) != 6 || bars[0].Group != "T-shirt/top" || bars[1].Series != BaselinePixels {
		t.Errorf("per-class bars %+v", bars)
	}
}

// unlabelledDataset writes n unlabelled side×side grey images (smooth
// random blobs) with no test split into dir.
func unlabelledDataset(t *testing.T, dir string, n, side int) {
	t.Helper()
	w, err := data.Create(dir, data.Preprocess{Size: side, Channels: 1}, nil, data.Provenance{Format: "generated"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		px := make([]uint8, side*side)
		cx, cy := float64(i*7%side), float64(i*13%side)
		for y := range side {
			for x := range side {
				d := math.Hypot(float64(x)-cx, float64(y)-cy)
				px[y*side+x] = uint8(255 * math.Exp(-d*d/40))
			}
		}
		if err := w.Add(data.Train, data.Record{Pixels: px, Label: -1, Origin: fmt.Sprint("blob", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestRunUnlabelledPretraining checks a run that pretrains on a dataset
// without labels: it probes only the labelled transfer dataset, does not
// train the pretexts that need labels, and says both in the report.
func TestRunUnlabelledPretraining(t *testing.T) {
	root := t.TempDir()
	photos := filepath.Join(root, "photos")
	unlabelledDataset(t, photos, 96, 28)
	cfg := tinyRun(filepath.Join(root, "run"))
	cfg.Dataset = DatasetSpec{Path: photos}
	cfg.Transfer = []DatasetSpec{{Builtin: "mnist-small"}}
	cfg.Pretexts = []string{"ae-linear", "supervised", BaselinePixels}
	p := &logProgress{}
	rep, err := Run(context.Background(), cfg, p)
	if err != nil {
		t.Fatal(err)
	}
	if d := rep.Datasets[0]; d.Name != "photos" || !strings.Contains(d.NotProbed, "no labels") || rep.Datasets[1].NotProbed != "" {
		t.Errorf("datasets %+v", rep.Datasets)
	}
	if len(rep.Rows) != 3 {
		t.Fatalf("%d rows, want 3 (one per pretext, on the transfer dataset only)", len(rep.Rows))
	}
	for _, r := range rep.Rows {
		want := 1
		if r.Pretext == "supervised" {
			want = 0
		}
		if r.Dataset != "mnist-small" || r.Seeds != want {
			t.Errorf("row %+v", r)
		}
	}
	for _, e := range rep.Entries {
		switch {
		case e.Pretext == "supervised":
			if !strings.Contains(e.Skipped, "trains on labels") || e.Training != nil || len(e.Probes) != 0 {
				t.Errorf("supervised: %+v", e)
			}
		case len(e.Probes) != 1 || e.Probes[0].Dataset != "mnist-small" || !(e.Probes[0].Result.LinearTop1 > 0.3):
			t.Errorf("%s: probes %+v", e.Pretext, e.Probes)
		case e.Pretext == "ae-linear" && (e.Training == nil || e.Training.Steps != cfg.Pretrain.Steps):
			t.Errorf("ae-linear: training %+v", e.Training)
		}
	}
	md, err := os.ReadFile(filepath.Join(cfg.Out, ReportMDFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"**photos** is not probed: it has no labels", "supervised: not trained: it trains on labels, and photos has none",
		"| pretext | mnist-small linear |"} {
		if !bytes.Contains(md, []byte(want)) {
			t.Errorf("report.md lacks %q:\n%s", want, md)
		}
	}
	if _, err := os.Stat(filepath.Join(cfg.Out, PerClassPlot)); err != nil {
		t.Errorf("no per-class plot of the transfer dataset: %v", err)
	}
	// The log counts the stages the run carries out: one pretraining, its
	// budget and two probes.
	var last string
	for _, l := range p.lines {
		if strings.HasPrefix(l, "[") {
			last = l
		}
	}
	if !strings.HasPrefix(last, "[4/4] ") {
		t.Errorf("last stage line %q, lines %q", last, p.lines)
	}

	// With no labelled dataset there is nothing to probe: an error before
	// any training.
	cfg.Out, cfg.Transfer = filepath.Join(root, "run2"), nil
	if _, err := Run(context.Background(), cfg, nil); err == nil || !strings.Contains(err.Error(), "no dataset to probe") {
		t.Errorf("no labelled dataset: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.Out, "pretrain")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pretrained anyway: %v", err)
	}
}
