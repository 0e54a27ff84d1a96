package pipeline

import (
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/patchwise-ml/patchwise/pretext"
	"github.com/patchwise-ml/patchwise/probe"
)

// ReportVersion is report.json's format_version: 3 added the
// comparisons, budgets, sweeps, layer-wise and low-shot probes and the
// methods; 4 dropped the wall times and wrote the paths relative to the
// run directory, so that a configuration gives the same report.json
// wherever and on however many machines it runs (docs/report.schema.json
// describes it).
const ReportVersion = 4

// Report is report.json: the comparison of a run's pretexts, every number
// with the protocol that produced it. It holds no wall-clock times of the
// invocation that wrote it (training times come from the pretraining
// metrics), so re-running a finished run writes the same report.
type Report struct {
	FormatVersion int          `json:"format_version"`
	Patchwise     string       `json:"patchwise"`
	Config        RunConfig    `json:"config"`
	Datasets      []RunDataset `json:"datasets"`
	// Rows are the means and standard deviations over seeds, per pretext
	// and probed dataset, in the configuration's order.
	Rows []ReportRow `json:"rows"`
	// Entries are the per-seed results.
	Entries []ReportEntry `json:"entries"`
	// Comparisons are the paired differences of each row to the random
	// encoder and to the best row, per dataset, on the linear probe, and
	// to the random encoder on each low-shot probe.
	Comparisons []Comparison `json:"comparisons"`
	// Budgets are what each trained pretext's pretraining cost.
	Budgets []Budget `json:"budgets"`
	// Sweeps are the learning-rate sweeps (PretextOverride.LRSweep).
	Sweeps []SweepRecord `json:"sweeps,omitempty"`
	// Layers are the layer-wise probes over seeds, per row and dataset.
	Layers []LayerRow `json:"layers,omitempty"`
	// LowShot are the low-shot probes over seeds, per row and dataset.
	LowShot []LowShotRow `json:"low_shot,omitempty"`
	// Methods states how the statistics were computed.
	Methods Methods `json:"methods"`
}

// ReportRow summarises one pretext on one probed dataset over seeds.
type ReportRow struct {
	Pretext string `json:"pretext"`
	Dataset string `json:"dataset"`
	Seeds   int    `json:"seeds"`            // seeds with results
	Failed  int    `json:"failed,omitempty"` // seeds whose pretraining diverged
	Linear  Stat   `json:"linear_top1"`
	KNN20   Stat   `json:"knn20_top1"`
	KNN200  Stat   `json:"knn200_top1"`
	// PerClass is the linear probe's accuracy on each class, in the label
	// order of the dataset's classes (RunDataset.Classes).
	PerClass []Stat `json:"per_class_linear,omitempty"`
}

// Stat is a mean and the sample standard deviation (n−1; 0 for one value)
// of N values; both are 0 when N is 0.
type Stat struct {
	Mean float64 `json:"mean"`
	Std  float64 `json:"std"`
	N    int     `json:"n"`
}

func statOf(xs []float64) Stat {
	s := Stat{N: len(xs)}
	if len(xs) == 0 {
		return s
	}
	for _, x := range xs {
		s.Mean += x
	}
	s.Mean /= float64(len(xs))
	if len(xs) > 1 {
		var v float64
		for _, x := range xs {
			v += (x - s.Mean) * (x - s.Mean)
		}
		s.Std = math.Sqrt(v / float64(len(xs)-1))
	}
	return s
}

// ReportEntry is one pretext and seed.
type ReportEntry struct {
	Pretext  string           `json:"pretext"`
	Seed     uint64           `json:"seed"`
	Training *TrainingSummary `json:"training,omitempty"` // nil for the baselines
	Probes   []ReportProbe    `json:"probes"`
	// Error says why the entry has no results: its pretraining diverged.
	Error string `json:"error,omitempty"`
	// Skipped says why the entry was not trained nor probed: a pretext
	// that trains on labels, on a pretraining dataset without any.
	Skipped string `json:"skipped,omitempty"`
}

// ReportProbe is a probe of one entry on one dataset.
type ReportProbe struct {
	Dataset string        `json:"dataset"`
	Result  *probe.Result `json:"result"`
	// LowShot holds the low-shot probes (RunConfig.LowShot), by fraction.
	LowShot []probe.LowShotResult `json:"low_shot,omitempty"`
	// Layers holds the layer-wise probes (RunConfig.Layers).
	Layers *LayerProbe `json:"layers,omitempty"`
}

// TrainingSummary describes a pretraining from its metrics.
type TrainingSummary struct {
	Dir    string             `json:"dir"` // the training directory, relative to the run directory in a run's report
	Steps  int                `json:"steps"`
	Loss   float64            `json:"loss"`             // the last step's training loss
	Values map[string]float64 `json:"values,omitempty"` // the last step's pretext metrics, by key (pretext.Metric)
	// ValLoss and ValValues are the last validation's loss and pretext
	// metrics (such as "acc", or "mse" and its baseline "mse_mean_image").
	ValLoss   *float64           `json:"val_loss,omitempty"`
	ValValues map[string]float64 `json:"val_values,omitempty"`
	// Chance is the chance level of the metrics that have one, for the
	// resolved config (1/8 for relpos's accuracy).
	Chance map[string]float64 `json:"chance,omitempty"`
	// Seconds is the wall time of the training, summed over
	// resumptions: in report.md and report.html, not in report.json.
	Seconds float64 `json:"-"`
	// Optimizer, LR and Batch are the resolved settings it trained with.
	Optimizer string  `json:"optimizer"`
	LR        float64 `json:"lr"`
	Batch     int     `json:"batch"`
	// Curve is the training loss, averaged over windows of steps.
	Curve []CurvePoint `json:"curve"`
}

// CurvePoint is a point of a training curve.
type CurvePoint struct {
	Step int     `json:"step"`
	Loss float64 `json:"loss"`
}

// curvePoints is the number of points a training curve keeps.
const curvePoints = 50

// summarise fills e.Training from the training directory dir's metrics
// and resolved config.
func (e *ReportEntry) summarise(dir string) error {
	recs, err := ReadMetrics(filepath.Join(dir, MetricsFile))
	if err != nil {
		return err
	}
	cfg, err := LoadPretrainConfig(filepath.Join(dir, TrainConfigFile))
	if err != nil {
		return err
	}
	t := &TrainingSummary{Dir: dir, Optimizer: cfg.Optimizer, LR: cfg.LR, Batch: cfg.Batch}
	if spec, err := pretext.Lookup(cfg.Pretext); err == nil {
		for _, m := range spec.Metrics {
			if m.Chance != nil {
				if t.Chance == nil {
					t.Chance = map[string]float64{}
				}
				t.Chance[m.Key] = m.Chance(cfg.Config)
			}
		}
	}
	var train []MetricsRecord
	for _, r := range recs {
		if r.IsVal() {
			t.ValLoss, t.ValValues = r.ValLoss, r.Values
			continue
		}
		train = append(train, r)
	}
	if len(train) == 0 {
		return fmt.Errorf("pipeline: run: %s: no training steps in its metrics", dir)
	}
	last := train[len(train)-1]
	t.Steps, t.Loss, t.Values = last.Step, *last.Loss, last.Values
	// Wall time restarts at 0 when a run resumes: sum the segments.
	prev := 0.0
	for _, r := range train {
		if r.WallS < prev {
			t.Seconds += prev
		}
		prev = r.WallS
	}
	t.Seconds = round3(t.Seconds + prev)
	win := max(1, (len(train)+curvePoints-1)/curvePoints)
	for i := 0; i < len(train); i += win {
		j := min(i+win, len(train))
		var sum float64
		for _, r := range train[i:j] {
			sum += *r.Loss
		}
		t.Curve = append(t.Curve, CurvePoint{Step: train[j-1].Step, Loss: sum / float64(j-i)})
	}
	e.Training = t
	return nil
}

func newReport(cfg RunConfig, datasets []RunDataset, entries []ReportEntry) *Report {
	rep := &Report{FormatVersion: ReportVersion, Patchwise: Version(), Config: cfg, Datasets: datasets, Entries: entries}
	for _, name := range cfg.Pretexts {
		for _, ds := range datasets {
			if ds.NotProbed != "" {
				continue
			}
			var lin, k20, k200 []float64
			var perClass [][]float64 // [class][seed]
			failed := 0
			for _, e := range entries {
				if e.Pretext != name {
					continue
				}
				if e.Error != "" {
					failed++
				}
				for _, p := range e.Probes {
					if p.Dataset == ds.Name {
						lin = append(lin, p.Result.LinearTop1)
						k20 = append(k20, p.Result.KNN20Top1)
						k200 = append(k200, p.Result.KNN200Top1)
						for c, a := range p.Result.PerClass {
							if c == len(perClass) {
								perClass = append(perClass, nil)
							}
							perClass[c] = append(perClass[c], a)
						}
					}
				}
			}
			row := ReportRow{Pretext: name, Dataset: ds.Name, Seeds: len(lin), Failed: failed,
				Linear: statOf(lin), KNN20: statOf(k20), KNN200: statOf(k200)}
			for _, xs := range perClass {
				row.PerClass = append(row.PerClass, statOf(xs))
			}
			rep.Rows = append(rep.Rows, row)
		}
	}
	rep.analyse()
	return rep
}

// classNames returns the names of the classes of the dataset d: its
// class names, or where a run did not record them ("0", "1", …) as many
// as the longest per-class list of its rows.
func (rep *Report) classNames(d RunDataset) []string {
	n := 0
	for _, r := range rep.Rows {
		if r.Dataset == d.Name {
			n = max(n, len(r.PerClass))
		}
	}
	names := slices.Clone(d.Classes)
	for c := len(names); c < n; c++ {
		names = append(names, strconv.Itoa(c))
	}
	return names
}

// perClassBars are the bars of the per-class plot: the classes of the
// first probed dataset (the pretraining one, unless it has no labels) as
// groups, the pretexts as series.
func (rep *Report) perClassBars() []PlotBar {
	probed := rep.probed()
	if len(probed) == 0 {
		return nil
	}
	d := probed[0]
	var bars []PlotBar
	names := rep.classNames(d)
	for c, class := range names {
		for _, r := range rep.Rows {
			if r.Dataset != d.Name || len(r.PerClass) == 0 {
				continue
			}
			st := Stat{}
			if c < len(r.PerClass) {
				st = r.PerClass[c]
			}
			bars = append(bars, PlotBar{Group: class, Series: r.Pretext, Mean: orNaN(st), Std: st.Std})
		}
	}
	return bars
}

// curves averages each pretext's training curve over its seeds.
func (rep *Report) curves() []PlotCurve {
	var out []PlotCurve
	for _, name := range rep.Config.Pretexts {
		var sum []float64
		var steps []float64
		n := 0
		for _, e := range rep.Entries {
			if e.Pretext != name || e.Training == nil {
				continue
			}
			if n == 0 {
				sum = make([]float64, len(e.Training.Curve))
				for _, p := range e.Training.Curve {
					steps = append(steps, float64(p.Step))
				}
			}
			if len(e.Training.Curve) != len(sum) {
				continue // another budget: not averaged
			}
			for i, p := range e.Training.Curve {
				sum[i] += p.Loss
			}
			n++
		}
		if n == 0 {
			continue
		}
		for i := range sum {
			sum[i] /= float64(n)
		}
		out = append(out, PlotCurve{Label: name, X: steps, Y: sum})
	}
	return out
}

// probed returns the datasets the run probed.
func (rep *Report) probed() []RunDataset {
	var out []RunDataset
	for _, d := range rep.Datasets {
		if d.NotProbed == "" {
			out = append(out, d)
		}
	}
	return out
}

// mdCell escapes s for a Markdown table cell.
func mdCell(s string) string {
	return strings.NewReplacer("|", "\\|", "\n", " ").Replace(s)
}

// validationSummary describes the last validation of a pretext's
// trainings in words: each of its Spec's metrics that is not another's
// baseline, as mean ± std over the trainings, with its baseline's mean or
// its chance level; "–" when there is none.
func validationSummary(name string, ts []*TrainingSummary) string {
	spec, err := pretext.Lookup(name)
	if err != nil {
		return "–"
	}
	baselines := map[string]bool{}
	for _, m := range spec.Metrics {
		baselines[m.Baseline] = true
	}
	values := func(key string) []float64 {
		var xs []float64
		for _, t := range ts {
			if v, ok := t.ValValues[key]; ok {
				xs = append(xs, v)
			}
		}
		return xs
	}
	format := func(m pretext.Metric, v float64) string {
		if m.Percent {
			return fmt.Sprintf("%.1f %%", 100*v)
		}
		return fmt.Sprintf("%.4f", v)
	}
	var parts []string
	for _, m := range spec.Metrics {
		xs := values(m.Key)
		if baselines[m.Key] || len(xs) == 0 {
			continue
		}
		s := statOf(xs)
		part := m.Title + " " + num(s, "%.4f")
		if m.Percent {
			part = m.Title + " " + pct(s) + " %"
		}
		var refs []string
		if bs := values(m.Baseline); len(bs) > 0 {
			for _, bm := range spec.Metrics {
				if bm.Key == m.Baseline {
					refs = append(refs, bm.Title+" "+format(bm, statOf(bs).Mean))
				}
			}
		}
		if c, ok := ts[0].Chance[m.Key]; ok {
			refs = append(refs, "chance "+format(m, c))
		}
		if len(refs) > 0 {
			part += " (" + strings.Join(refs, "; ") + ")"
		}
		parts = append(parts, part)
	}
	if len(parts) == 0 {
		return "–"
	}
	return strings.Join(parts, "; ")
}

// probeProtocol is the protocol of the first encoder's probe.
func (rep *Report) probeProtocol() *probe.Protocol {
	for _, e := range rep.Entries {
		for _, pr := range e.Probes {
			if pr.Result != nil && e.Pretext != BaselinePixels {
				return &pr.Result.Protocol
			}
		}
	}
	return nil
}

// orNaN is s's mean, or NaN (a missing bar) when it has no values.
func orNaN(s Stat) float64 {
	if s.N == 0 {
		return math.NaN()
	}
	return s.Mean
}

func pct(s Stat) string {
	if s.N == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f ± %.1f", 100*s.Mean, 100*s.Std)
}

func num(s Stat, f string) string {
	return fmt.Sprintf(f+" ± "+f, s.Mean, s.Std)
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func joinSeeds(seeds []uint64) string {
	var s []string
	for _, x := range seeds {
		s = append(s, fmt.Sprint(x))
	}
	if len(s) == 1 {
		return "seed " + s[0]
	}
	return "seeds " + strings.Join(s, ", ")
}
