package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/patchwise-ml/patchwise/pretext"
	"github.com/patchwise-ml/patchwise/probe"
)

var (
	fullOnce sync.Once
	fullDir  string
	fullRep  *Report // as Run returned it, with the wall times
	fullErr  error
)

// fullRunConfig is a small run with every part of the report: a
// learning-rate sweep with a batch override, layer-wise and low-shot
// probes, three seeds, the two baselines.
func fullRunConfig(out string) RunConfig {
	cfg := tinyRun(out)
	cfg.Pretexts = []string{"ae-linear", "relpos", BaselineRandom, BaselinePixels}
	cfg.Seeds = []uint64{1, 2, 3}
	cfg.Overrides = map[string]PretextOverride{"relpos": {LRSweep: []float64{0.02, 0.05}, Batch: 16}}
	cfg.Layers = &LayersConfig{}
	cfg.LowShot = &probe.LowShotConfig{Fractions: []float64{0.02, 0.1}}
	return cfg
}

// fullRun runs fullRunConfig once for the tests of the package and
// returns its directory.
func fullRun(t *testing.T) string {
	fullOnce.Do(func() {
		dir, err := os.MkdirTemp("", "patchwise-full-run-")
		if err != nil {
			fullErr = err
			return
		}
		fullDir = filepath.Join(dir, "run")
		fullRep, fullErr = Run(context.Background(), fullRunConfig(fullDir), nil)
	})
	if fullErr != nil {
		t.Fatal(fullErr)
	}
	return fullDir
}

func TestRunComparisonParts(t *testing.T) {
	if testing.Short() {
		t.Skip("short: runs a small pretext comparison")
	}
	dir := fullRun(t)
	b, err := os.ReadFile(filepath.Join(dir, ReportJSONFile))
	if err != nil {
		t.Fatal(err)
	}
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	// The sweep chose the learning rate of the lowest validation loss, on
	// a carve (mnist-small has no val split), and every seed trained with it.
	if len(rep.Sweeps) != 1 || rep.Sweeps[0].Validation != "carve" || len(rep.Sweeps[0].Trials) != 2 {
		t.Fatalf("sweeps %+v", rep.Sweeps)
	}
	sw := rep.Sweeps[0]
	best := sw.Trials[0]
	for _, tr := range sw.Trials {
		if *tr.ValLoss < *best.ValLoss {
			best = tr
		}
	}
	if sw.Chosen != best.LR {
		t.Errorf("chose lr %v, the lowest validation loss is at %v", sw.Chosen, best.LR)
	}
	for _, e := range rep.Entries {
		if e.Pretext == "relpos" && (e.Training.LR != sw.Chosen || e.Training.Batch != 16) {
			t.Errorf("relpos seed %d trained with lr %v, batch %d; want %v, 16", e.Seed, e.Training.LR, e.Training.Batch, sw.Chosen)
		}
	}
	// Budgets: counted FLOPs, views per sample, the sweep's extra cost.
	if len(rep.Budgets) != 2 {
		t.Fatalf("budgets %+v", rep.Budgets)
	}
	for _, bu := range rep.Budgets {
		views := map[string]int{"ae-linear": 1, "relpos": 2}[bu.Pretext]
		if bu.ViewsPerSample != views || bu.Images != int64(bu.Steps*bu.Batch) || bu.Views != bu.Images*int64(views) ||
			!(bu.FLOPsPerStep > 0) || bu.FLOPs != float64(bu.Steps)*bu.FLOPsPerStep {
			t.Errorf("budget %+v", bu)
		}
		if (bu.Pretext == "relpos") != (bu.SweepFLOPs > 0) {
			t.Errorf("%s: sweep FLOPs %v", bu.Pretext, bu.SweepFLOPs)
		}
	}
	// The wall times are in the report Run returns (report.md shows
	// them), not in report.json.
	if bytes.Contains(b, []byte(`"seconds"`)) {
		t.Error("report.json holds wall times")
	}
	for _, bu := range fullRep.Budgets {
		if bu.Seconds.N != 3 || !(bu.Seconds.Mean > 0) || (bu.Pretext == "relpos") != (bu.SweepSeconds > 0) {
			t.Errorf("%s: wall time %+v, the sweep's %v", bu.Pretext, bu.Seconds, bu.SweepSeconds)
		}
	}
	// Comparisons: every row against random and against the best row on
	// the linear probe, and against random at each low-shot fraction.
	count := map[string]int{}
	for _, c := range rep.Comparisons {
		count[c.Reference+" "+c.Score]++
		if len(c.Seeds) != 3 || c.T == nil || c.Bootstrap == nil || c.TestImages != 1000 || c.Summary == "" {
			t.Errorf("%s vs %s (%s): %+v", c.Pretext, c.Reference, c.Score, c)
		}
		if c.Verdict == VerdictUnresolved && c.SeedsNeeded == nil && !c.T.ExcludesZero {
			t.Errorf("%s vs %s: not resolved without a seeds-needed estimate", c.Pretext, c.Reference)
		}
	}
	bestRow := rep.best("mnist-small")
	if count["random linear_top1"] != 3 || count[bestRow+" linear_top1"] != 3 ||
		count["random low_shot_top1@0.02"] != 3 || count["random low_shot_top1@0.1"] != 3 {
		t.Errorf("comparisons by reference and score: %v (best row %s)", count, bestRow)
	}
	// Layer-wise rows for the three encoders; low-shot rows for all four,
	// the full probe as fraction 1.
	if len(rep.Layers) != 3 || len(rep.LowShot) != 4 {
		t.Fatalf("%d layer rows, %d low-shot rows", len(rep.Layers), len(rep.LowShot))
	}
	for _, lr := range rep.Layers {
		if len(lr.Stages) != 2 || lr.Stages[0].Pooled != 8 || lr.Stages[1].Pooled != 6 || lr.Stages[1].FeatureDim != 288 {
			t.Errorf("layers of %s: %+v", lr.Pretext, lr.Stages)
		}
	}
	for _, ls := range rep.LowShot {
		last := ls.Points[len(ls.Points)-1]
		if r := rep.row(ls.Pretext, ls.Dataset); len(ls.Points) != 3 || last.Fraction != 1 || last.Top1 != r.Linear {
			t.Errorf("low-shot of %s: %+v", ls.Pretext, ls.Points)
		}
		if ls.Points[0].PerClass != 10 || ls.Points[0].Draws != 5 || ls.Points[1].Draws != 3 {
			t.Errorf("low-shot of %s: %+v", ls.Pretext, ls.Points)
		}
	}
	// report.html stands alone: its plots inline, nothing fetched.
	page, err := os.ReadFile(filepath.Join(dir, ReportHTMLFile))
	if err != nil {
		t.Fatal(err)
	}
	html := string(page)
	srcs := regexp.MustCompile(`(?:src|href)="([^"]*)"`).FindAllStringSubmatch(html, -1)
	images := 0
	for _, m := range srcs {
		switch {
		case strings.HasPrefix(m[1], "data:image/png;base64,"):
			images++
		case strings.HasPrefix(m[1], "#"):
		default:
			t.Errorf("report.html refers to %q", m[1])
		}
	}
	for _, want := range []string{"Does a pretext beat the random encoder?", "Few labels", "Layer by layer", "Budgets", "Per-class accuracy", "Protocol", `class="num`} {
		if !strings.Contains(html, want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	plots := []string{AccuracyPlot, DifferencePlot, PerClassPlot, LayersPlot, LowShotPlot, CurvesPlot}
	if images != len(plots) {
		t.Errorf("report.html embeds %d images, want %d", images, len(plots))
	}
	md, err := os.ReadFile(filepath.Join(dir, ReportMDFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range plots {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
		if !strings.Contains(string(md), "]("+f+")") {
			t.Errorf("report.md does not show %s", f)
		}
	}
	if math.IsNaN(rep.Methods.Level) || rep.Methods.Resamples != DefaultResamples || !slices.Contains([]string{MethodT}, rep.Methods.T) {
		t.Errorf("methods %+v", rep.Methods)
	}
}

func TestRunConfigValidateOverrides(t *testing.T) {
	cfg := fullRunConfig("out")
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	cfg.Overrides = map[string]PretextOverride{
		"random":    {LR: 0.1},
		"jigsaw":    {Steps: 3},
		"ae-linear": {Optimizer: "lbfgs", LR: -1, Batch: -2, Steps: -3},
		"relpos":    {LR: 0.1, LRSweep: []float64{0.1, 0.1, 0}},
	}
	cfg.Layers = &LayersConfig{Features: -1}
	cfg.LowShot = &probe.LowShotConfig{Fractions: []float64{2}}
	cfg.Stats = StatsConfig{Level: 1.5, Resamples: 10}
	err := cfg.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		`overrides["random"]: not a pretext of this run that is trained`,
		`overrides["jigsaw"]: not a pretext of this run`,
		`overrides["ae-linear"]: optimizer "lbfgs"`, `overrides["ae-linear"]: lr -1`, `overrides["ae-linear"]: batch -2`, `overrides["ae-linear"]: steps -3`,
		`overrides["relpos"]: give lr or lr_sweep, not both`, `lr_sweep[1] = 0.1 repeats lr_sweep[0]`, `lr_sweep[2] = 0`,
		"layers: features -1", "fractions[0] = 2", "level 1.5", "resamples 10",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
}

func TestLayerPooling(t *testing.T) {
	// The compare job's encoder on 32×32 inputs: maps of 16, 8, 4, 2.
	if got := LayerPooling(pretext.EncoderConfig{Widths: []int{16, 32, 64, 128}}, 32, 256); !slices.Equal(got, []int{4, 3, 2, 1}) {
		t.Errorf("compare encoder, 256 features: %v, want [4 3 2 1]", got)
	}
	// The map's side caps the bins.
	if got := LayerPooling(pretext.EncoderConfig{Widths: []int{1, 2}}, 8, 1024); !slices.Equal(got, []int{4, 2}) {
		t.Errorf("capped: %v, want [4 2]", got)
	}
	// A ResNet-18 at width 1/4 with the ImageNet stem on 64×64 inputs:
	// maps of 16, 8, 4, 2; with the small stem on 32×32: 32, 16, 8, 4.
	res := pretext.EncoderConfig{Arch: pretext.ArchResNet18, Stem: pretext.StemImageNet, Width: 0.25}
	if got := LayerPooling(res, 64, 1024); !slices.Equal(got, []int{8, 6, 4, 2}) {
		t.Errorf("resnet18, imagenet stem: %v, want [8 6 4 2]", got)
	}
	res.Stem = pretext.StemSmall
	if got := LayerPooling(res, 32, 1024); !slices.Equal(got, []int{8, 6, 4, 3}) {
		t.Errorf("resnet18, small stem: %v, want [8 6 4 3]", got)
	}
}

func TestInlineHTML(t *testing.T) {
	got := inlineHTML("**relpos** <b> & `config.pretrain` vs **a|b**")
	want := "<strong>relpos</strong> &lt;b&gt; &amp; <code>config.pretrain</code> vs <strong>a|b</strong>"
	if got != want {
		t.Errorf("inlineHTML: %q, want %q", got, want)
	}
	if a := anchor("Does a pretext beat the random encoder?"); a != "does-a-pretext-beat-the-random-encoder" {
		t.Errorf("anchor %q", a)
	}
}
