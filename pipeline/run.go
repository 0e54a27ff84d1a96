package pipeline

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/patchwise-ml/patchwise/data"
	"github.com/patchwise-ml/patchwise/data/builtin"
	"github.com/patchwise-ml/patchwise/internal/fsutil"
	"github.com/patchwise-ml/patchwise/pipeline/checkpoint"
	"github.com/patchwise-ml/patchwise/pretext"
	"github.com/patchwise-ml/patchwise/probe"
)

// Baselines of a run: rows of the comparison that are probed without
// pretraining.
const (
	BaselineRandom = "random" // the encoder as initialised from the seed
	BaselinePixels = "pixels" // the raw pixels, no encoder
)

// RunConfig describes a batch experiment, `patchwise run`: datasets are
// ingested (or taken as they are), an encoder is pretrained with each
// pretext and seed on Dataset, and each encoder is probed on Dataset and
// on every Transfer dataset; a report compares them. Its zero value is
// not usable: Dataset and Pretexts are required.
type RunConfig struct {
	// Out is the run directory (see Run).
	Out string `json:"out"`
	// Dataset is pretrained on and probed.
	Dataset DatasetSpec `json:"dataset"`
	// Transfer datasets are only probed (pretrain on A, probe on B).
	Transfer []DatasetSpec `json:"transfer,omitempty"`
	// Pretexts are registered pretexts (pretext.Names), BaselineRandom or
	// BaselinePixels.
	Pretexts []string `json:"pretexts"`
	// Seeds: each pretext is trained and probed once per seed (the seed
	// of the weights, the batches and the probe's validation carve);
	// default [1].
	Seeds []uint64 `json:"seeds,omitempty"`
	// Pretrain holds the settings every pretext shares; its Dataset,
	// Pretext, Out and Seed must be empty (the run sets them).
	Pretrain PretrainConfig `json:"pretrain"`
	// Probe is the probe protocol, the same for every encoder.
	Probe ProbeConfig `json:"probe"`
	// Overrides replace shared pretraining settings for one pretext, by
	// name (a trained pretext of Pretexts): a fair comparison may give
	// each pretext its own optimiser, learning rate, batch or steps, or a
	// learning-rate sweep chosen on its own validation loss.
	Overrides map[string]PretextOverride `json:"overrides,omitempty"`
	// Layers, when set, adds the layer-wise probes: every block of each
	// encoder, on the pretraining dataset (and the transfer datasets if
	// asked).
	Layers *LayersConfig `json:"layers,omitempty"`
	// LowShot, when set, adds the low-shot probes: the linear probe with
	// a share of the labels (probe.LowShot), on every probed dataset and
	// for every row, the raw pixels too.
	LowShot *probe.LowShotConfig `json:"low_shot,omitempty"`
	// Stats configures the report's confidence intervals.
	Stats StatsConfig `json:"stats,omitzero"`
}

// DatasetSpec names a dataset by exactly one of Path, Builtin and Ingest.
// An embedded dataset is written into the run directory's datasets/.
type DatasetSpec struct {
	// Name labels the dataset in reports; default the builtin name or
	// the last element of the path or first input.
	Name    string      `json:"name,omitempty"`
	Path    string      `json:"path,omitempty"`    // an existing dataset directory; "builtin:NAME" means Builtin NAME
	Builtin string      `json:"builtin,omitempty"` // an embedded dataset (builtin.Names)
	Ingest  *IngestSpec `json:"ingest,omitempty"`  // images to ingest into the run directory
}

// IngestSpec is what `patchwise ingest` takes, for a run.
type IngestSpec struct {
	Inputs      []string        `json:"inputs"`
	Format      string          `json:"format,omitempty"`
	Preprocess  data.Preprocess `json:"preprocess"`
	ValFraction float64         `json:"val_fraction,omitempty"`
	Seed        uint64          `json:"seed,omitempty"`
	// Classes names the classes in label order, instead of the sources'
	// own names or a classes.txt in an input folder
	// (data.IngestConfig.Classes).
	Classes []string `json:"classes,omitempty"`
	// Unlabelled drops the sources' labels (data.IngestConfig.Unlabelled):
	// a tree of photos to pretrain on, cut into crops by Preprocess.Crops.
	Unlabelled bool `json:"unlabelled,omitempty"`
}

// normal returns s with a Path of the form "builtin:NAME" turned into
// Builtin NAME, unless Builtin is set too (which validate refuses).
func (s DatasetSpec) normal() DatasetSpec {
	if name, ok := builtin.Parse(s.Path); ok && name != "" && s.Builtin == "" {
		s.Path, s.Builtin = "", name
	}
	return s
}

// name is the spec's label.
func (s DatasetSpec) name() string {
	s = s.normal()
	switch {
	case s.Name != "":
		return s.Name
	case s.Builtin != "":
		return s.Builtin
	case s.Path != "":
		return filepath.Base(filepath.Clean(s.Path))
	case s.Ingest != nil && len(s.Ingest.Inputs) > 0:
		return filepath.Base(filepath.Clean(s.Ingest.Inputs[0]))
	}
	return ""
}

func (s DatasetSpec) validate(what string) error {
	s = s.normal()
	n := 0
	for _, set := range []bool{s.Path != "", s.Builtin != "", s.Ingest != nil} {
		if set {
			n++
		}
	}
	var errs []error
	if n != 1 {
		errs = append(errs, fmt.Errorf("%s: give exactly one of path, builtin and ingest", what))
	}
	if name, ok := builtin.Parse(s.Path); ok && name == "" || s.Builtin != "" && !slices.Contains(builtin.Names, s.Builtin) {
		errs = append(errs, fmt.Errorf("%s: unknown builtin dataset %q (embedded: %s)", what, s.Builtin, strings.Join(builtin.Names, ", ")))
	}
	if s.Ingest != nil {
		// Out is a stand-in: the run names the dataset directory.
		c := data.IngestConfig{Inputs: s.Ingest.Inputs, Format: s.Ingest.Format, Out: "x", Preprocess: s.Ingest.Preprocess,
			ValFraction: s.Ingest.ValFraction, Classes: s.Ingest.Classes, Unlabelled: s.Ingest.Unlabelled}
		if err := c.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
		}
	}
	if strings.ContainsAny(s.Name, `/\`) || s.Name == "." || s.Name == ".." {
		errs = append(errs, fmt.Errorf("%s: name %q must not be a path", what, s.Name))
	}
	return errors.Join(errs...)
}

// Validate reports every problem with the configuration at once.
func (c RunConfig) Validate() error {
	var errs []error
	if c.Out == "" {
		errs = append(errs, errors.New("no run directory (out)"))
	}
	if err := c.Dataset.validate("dataset"); err != nil {
		errs = append(errs, err)
	}
	names := map[string]bool{c.Dataset.name(): true}
	for i, t := range c.Transfer {
		if err := t.validate(fmt.Sprintf("transfer %d", i+1)); err != nil {
			errs = append(errs, err)
		}
		if n := t.name(); names[n] {
			errs = append(errs, fmt.Errorf("transfer %d: the name %q is taken: give it another \"name\"", i+1, n))
		} else {
			names[n] = true
		}
	}
	if len(c.Pretexts) == 0 {
		errs = append(errs, errors.New("no pretexts"))
	}
	seen := map[string]bool{}
	for _, p := range c.Pretexts {
		switch {
		case seen[p]:
			errs = append(errs, fmt.Errorf("pretext %q is listed twice", p))
		case p != BaselineRandom && p != BaselinePixels && !slices.Contains(pretext.Names(), p):
			errs = append(errs, fmt.Errorf("unknown pretext %q (known: %s, %s, %s)", p, strings.Join(pretext.Names(), ", "), BaselineRandom, BaselinePixels))
		}
		seen[p] = true
	}
	if len(c.Seeds) != len(uniq(c.Seeds)) {
		errs = append(errs, fmt.Errorf("seeds %v repeat", c.Seeds))
	}
	p := c.Pretrain
	if p.Dataset != "" || p.Pretext != "" || p.Out != "" || p.Seed != 0 {
		errs = append(errs, errors.New("pretrain: dataset, pretext, out and seed are set by the run: leave them out"))
	}
	// The shared settings, checked with stand-ins for what the run sets.
	p.Dataset, p.Pretext, p.Out = "x", pretext.Names()[0], "x"
	if err := p.Validate(); err != nil {
		errs = append(errs, err)
	}
	depth := len(c.Pretrain.Encoder.Widths)
	if depth == 0 {
		depth = len(pretext.DefaultWidths)
	}
	if _, err := c.Probe.resolve(depth); err != nil {
		errs = append(errs, err)
	}
	for _, name := range slices.Sorted(maps.Keys(c.Overrides)) {
		if !slices.Contains(c.Pretexts, name) || name == BaselineRandom || name == BaselinePixels {
			errs = append(errs, fmt.Errorf("overrides[%q]: not a pretext of this run that is trained", name))
		}
		if err := c.Overrides[name].validate(name); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Layers != nil {
		if err := c.Layers.validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.LowShot != nil {
		if err := c.LowShot.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := c.Stats.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// stages counts the stages of a run: the ingests, a pretraining per
// trained pretext and seed, and a probe per pretext, seed and dataset.
func (c RunConfig) stages() int { return c.countStages(nil, nil) }

// countStages counts the stages a run of c logs: probed[i] says whether
// dataset i (the pretraining dataset, then the transfer datasets) is
// probed, nil meaning all; trained says whether a pretext is trained, nil
// meaning all.
func (c RunConfig) countStages(probed []bool, trained func(string) bool) int {
	specs := append([]DatasetSpec{c.Dataset}, c.Transfer...)
	isProbed := func(i int) bool { return probed == nil || probed[i] }
	n := 0
	for _, s := range specs {
		if s.Ingest != nil {
			n++
		}
	}
	sweeps := false
	seeds := len(c.Seeds)
	for _, p := range c.Pretexts {
		baseline := p == BaselineRandom || p == BaselinePixels
		if !baseline && trained != nil && !trained(p) {
			continue
		}
		if !baseline {
			n += seeds + 1 // pretrainings and the budget
			if k := len(c.Overrides[p].LRSweep); k > 0 {
				n += k
				sweeps = true
			}
		}
		for i := range specs {
			if !isProbed(i) {
				continue
			}
			n += seeds // the probes
			if c.LowShot != nil {
				n += seeds
			}
			if c.Layers != nil && p != BaselinePixels && (i == 0 || c.Layers.Transfer) {
				n += seeds
			}
		}
	}
	if sweeps {
		n++ // the validation carve, when the dataset has no val split
	}
	return n
}

func uniq(xs []uint64) []uint64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return slices.Compact(s)
}

// LoadRunConfig reads a RunConfig from a JSON file, refusing unknown
// fields and trailing data. Lines whose first non-blank characters are
// "//" are comments.
func LoadRunConfig(path string) (RunConfig, error) {
	var c RunConfig
	b, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("pipeline: run config: %w", err)
	}
	if err := decodeStrict(stripComments(b), &c); err != nil {
		return c, fmt.Errorf("pipeline: run config %q: %w", path, err)
	}
	return c, nil
}

// stripComments blanks the lines of b that start with "//" (after
// spaces), keeping line numbers for error messages.
func stripComments(b []byte) []byte {
	lines := bytes.Split(b, []byte("\n"))
	for i, l := range lines {
		if bytes.HasPrefix(bytes.TrimLeft(l, " \t"), []byte("//")) {
			lines[i] = nil
		}
	}
	return bytes.Join(lines, []byte("\n"))
}

func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the JSON object")
	}
	return nil
}

// Files of a run directory.
const (
	RunManifestFile = "run.json"    // RunManifest
	ReportJSONFile  = "report.json" // Report
	ReportMDFile    = "report.md"
	AccuracyPlot    = "accuracy.png"
	PerClassPlot    = "per-class.png"
	CurvesPlot      = "curves.png"
)

// RunManifest is run.json: what a run was asked, what it used and how long
// each stage took in the latest invocation.
type RunManifest struct {
	FormatVersion int           `json:"format_version"`
	Config        RunConfig     `json:"config"`
	Patchwise     string        `json:"patchwise"`
	Go            string        `json:"go"`
	Datasets      []RunDataset  `json:"datasets"`
	Stages        []StageRecord `json:"stages"`
	Seconds       float64       `json:"seconds"` // this invocation
	Finished      bool          `json:"finished"`
}

// RunManifestVersion is run.json's format_version.
const RunManifestVersion = 1

// RunDataset is a dataset a run used.
type RunDataset struct {
	Name    string   `json:"name"`
	ID      string   `json:"id"`
	Dir     string   `json:"dir"`
	Role    string   `json:"role"`              // "pretrain" or "transfer"
	Classes []string `json:"classes,omitempty"` // the class names, in label order
	// NotProbed says why the run does not probe the dataset; "" when it
	// does. A dataset without labels is pretrained on, never probed.
	NotProbed string `json:"not_probed,omitempty"`
}

// StageRecord describes one stage of a run.
type StageRecord struct {
	Kind    string  `json:"kind"`    // "ingest", "pretrain" or "probe"
	Name    string  `json:"name"`    // e.g. "relpos seed 1", "relpos seed 1 on mnist-small"
	Output  string  `json:"output"`  // path relative to the run directory
	Status  string  `json:"status"`  // "done", "resumed" or "skipped" (finished earlier)
	Seconds float64 `json:"seconds"` // in this invocation
}

// Logger is an optional extension of Progress: a Progress that is a Logger
// receives one line per stage (done, skipped, resumed).
type Logger interface {
	Log(line string)
}

// ErrRunConfigChanged is wrapped by Run's error when the run directory
// holds a run of another configuration.
var ErrRunConfigChanged = errors.New("the run directory holds a run of another configuration")

// Run carries out cfg in the run directory cfg.Out (created if missing):
//
//	datasets/   ingested or embedded datasets
//	pretrain/   one training directory (Pretrain) per pretext and seed
//	probe/      one probe result (JSON) per encoder and probed dataset
//	features/   the feature cache
//	run.json, report.json, report.md, accuracy.png, per-class.png, curves.png
//
// Each stage's output is named by a hash of its inputs and settings: a
// finished stage is skipped, an interrupted pretraining resumes from its
// latest checkpoint, and the report, rebuilt from the stages' outputs, is
// the same. A dir holding a run of another configuration is refused
// (ErrRunConfigChanged); so is a directory that is not a run's. When ctx is cancelled, Run stops after saving a
// checkpoint of the pretraining in progress and returns ctx's error.
func Run(ctx context.Context, cfg RunConfig, p Progress) (*Report, error) {
	if p == nil {
		p = NoProgress{}
	}
	if len(cfg.Seeds) == 0 {
		cfg.Seeds = []uint64{1}
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%w:\n%w", ErrInvalidConfig, err)
	}
	r := newRunner(cfg, p)
	if err := r.claim(); err != nil {
		return nil, err
	}
	if err := r.refuseClaimed(); err != nil {
		return nil, err
	}
	rep, err := r.run(ctx)
	r.man.Seconds = round3(time.Since(r.start).Seconds())
	r.man.Finished = err == nil
	if werr := r.writeManifest(); err == nil && werr != nil {
		err = werr
	}
	return rep, err
}

type runner struct {
	cfg   RunConfig
	dir   string
	p     Progress
	start time.Time
	man   RunManifest
	// stageOnly: the runner carries out one stage of a shared run
	// (Work), and leaves run.json as it is once it exists.
	stageOnly bool
	// datasets: the pretraining one first, then the transfer ones.
	datasets []*data.Dataset
	names    []string
	// stages is the number of stages the run plans, done how many of
	// them have been carried out or skipped, for the log.
	stages, done int
	// chosenLR holds the learning rates chosen by sweeps, by pretext;
	// sweepDS is the dataset the sweeps validate on, once made.
	chosenLR map[string]float64
	sweepDS  *data.Dataset
	sweeps   []SweepRecord
	budgets  map[string]*StepCost
}

func newRunner(cfg RunConfig, p Progress) *runner {
	return &runner{cfg: cfg, dir: cfg.Out, p: p, start: time.Now(), stages: cfg.stages(),
		chosenLR: map[string]float64{}, budgets: map[string]*StepCost{}}
}

func (r *runner) log(format string, args ...any) {
	if l, ok := r.p.(Logger); ok {
		l.Log(fmt.Sprintf(format, args...))
	}
}

// claim creates the run directory, or checks that the one there holds
// this configuration. Processes that start at once on a new directory
// agree: one creates run.json, the others read it.
func (r *runner) claim() error {
	r.man = RunManifest{FormatVersion: RunManifestVersion, Config: r.cfg, Patchwise: Version(), Go: GoVersion()}
	path := filepath.Join(r.dir, RunManifestFile)
	var b []byte
	for {
		var err error
		b, err = os.ReadFile(path)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("pipeline: run: %w", err)
		}
		entries, _ := os.ReadDir(r.dir)
		for _, e := range entries {
			// Another process's run.json, being written or just written.
			if e.Name() != RunManifestFile && !strings.HasPrefix(e.Name(), "."+RunManifestFile+".tmp-") {
				return fmt.Errorf("pipeline: run: %q exists and is not a run directory (no %s): choose a new directory", r.dir, RunManifestFile)
			}
		}
		if err := os.MkdirAll(r.dir, 0o755); err != nil {
			return fmt.Errorf("pipeline: run: %w", err)
		}
		mb, err := r.manifestJSON()
		if err != nil {
			return err
		}
		err = fsutil.WriteNew(path, func(w io.Writer) error { _, err := w.Write(mb); return err })
		if !errors.Is(err, fs.ErrExist) {
			return err
		}
	}
	var old RunManifest
	if err := json.Unmarshal(b, &old); err != nil {
		return fmt.Errorf("pipeline: run: %s: %w", path, err)
	}
	if old.FormatVersion != RunManifestVersion {
		return fmt.Errorf("pipeline: run: %s: format_version %d; this build reads %d", path, old.FormatVersion, RunManifestVersion)
	}
	oc, nc := old.Config, r.cfg
	oc.Out, nc.Out = "", ""                         // the same directory, however named
	oc.Pretrain.Workers, nc.Pretrain.Workers = 0, 0 // results do not depend on it
	a, _ := json.Marshal(oc)
	c, _ := json.Marshal(nc)
	if !bytes.Equal(a, c) {
		return fmt.Errorf("pipeline: run %q: %w: use another directory (the earlier configuration is in %s)", r.dir, ErrRunConfigChanged, path)
	}
	return nil
}

func (r *runner) manifestJSON() ([]byte, error) {
	b, err := json.MarshalIndent(r.man, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

func (r *runner) writeManifest() error {
	if r.stageOnly {
		return nil
	}
	b, err := r.manifestJSON()
	if err != nil {
		return err
	}
	return fsutil.Replace(filepath.Join(r.dir, RunManifestFile), func(w io.Writer) error { _, err := w.Write(b); return err })
}

// stage records a finished stage in run.json.
func (r *runner) stage(kind, name, out, status string, t0 time.Time) error {
	rel, err := filepath.Rel(r.dir, out)
	if err != nil {
		rel = out
	}
	r.man.Stages = append(r.man.Stages, StageRecord{Kind: kind, Name: name, Output: filepath.ToSlash(rel), Status: status, Seconds: round3(time.Since(t0).Seconds())})
	r.done++
	n := fmt.Sprint(r.stages)
	prefix := fmt.Sprintf("[%*d/%s] ", len(n), r.done, n)
	if r.stageOnly {
		prefix = "  " // the worker numbers the stages of the plan
	}
	switch status {
	case "skipped":
		r.log("%s%s %s: finished earlier, skipped (%s)", prefix, kind, name, rel)
	default:
		r.log("%s%s %s: %s in %.1f s (%s)", prefix, kind, name, status, time.Since(t0).Seconds(), rel)
	}
	return r.writeManifest()
}

// openDatasets opens, materialises or ingests the run's datasets and
// plans which are probed.
func (r *runner) openDatasets(ctx context.Context) error {
	specs := append([]DatasetSpec{r.cfg.Dataset}, r.cfg.Transfer...)
	for i, s := range specs {
		ds, err := r.dataset(ctx, s)
		if err != nil {
			return err
		}
		role := "pretrain"
		if i > 0 {
			role = "transfer"
		}
		r.datasets, r.names = append(r.datasets, ds), append(r.names, s.name())
		r.man.Datasets = append(r.man.Datasets, RunDataset{Name: s.name(), ID: ds.ID(), Dir: ds.Dir(), Role: role, Classes: ds.Manifest().Classes})
	}
	return r.planProbes()
}

// chooseLR runs (or reads, when finished) the learning-rate sweep of
// pretext name, if it has one that can train, and keeps its choice.
func (r *runner) chooseLR(ctx context.Context, name string) error {
	if len(r.cfg.Overrides[name].LRSweep) == 0 || r.untrainable(name) != "" {
		return nil
	}
	rec, err := r.sweep(ctx, name)
	if err != nil {
		return err
	}
	r.sweeps = append(r.sweeps, *rec)
	r.chosenLR[name] = rec.Chosen
	return nil
}

func (r *runner) run(ctx context.Context) (*Report, error) {
	if err := r.openDatasets(ctx); err != nil {
		return nil, err
	}
	var entries []ReportEntry
	var failed []error
	for _, name := range r.cfg.Pretexts {
		if err := r.chooseLR(ctx, name); err != nil {
			return nil, err
		}
		for _, seed := range r.cfg.Seeds {
			e, err := r.entry(ctx, name, seed)
			if errors.Is(err, ErrNonFinite) && ctx.Err() == nil {
				// A diverged pretraining is a result: the others go on.
				r.log("%v", err)
				e = &ReportEntry{Pretext: name, Seed: seed, Error: err.Error()}
				failed = append(failed, err)
			} else if err != nil {
				return nil, err
			}
			entries = append(entries, *e)
		}
		if name != BaselineRandom && name != BaselinePixels && r.untrainable(name) == "" {
			c, err := r.budget(ctx, name)
			if err != nil {
				return nil, err
			}
			r.budgets[name] = c
		}
	}
	rep := newReport(r.reportConfig(), r.reportDatasets(), r.reportEntries(entries))
	rep.addBudgets(r.budgets, r.reportSweeps(r.sweeps))
	if err := rep.write(r.dir); err != nil {
		return rep, err
	}
	if len(failed) > 0 {
		return rep, fmt.Errorf("pipeline: run: %d of %d pretrainings diverged; the report has the others:\n%w",
			len(failed), len(entries), errors.Join(failed...))
	}
	return rep, nil
}

// reportConfig is the configuration as report.json states it: the run
// directory is ".", the directory the report is in.
func (r *runner) reportConfig() RunConfig {
	c := r.cfg
	c.Out = "."
	c.Pretrain.Workers = 0 // results do not depend on it
	return c
}

// reportDatasets are the run's datasets with the directories inside the
// run directory written relative to it.
func (r *runner) reportDatasets() []RunDataset {
	ds := slices.Clone(r.man.Datasets)
	for i := range ds {
		ds[i].Dir = r.rel(ds[i].Dir)
	}
	return ds
}

// reportEntries returns entries with their training directories, and
// the paths in their errors, relative to the run directory.
func (r *runner) reportEntries(entries []ReportEntry) []ReportEntry {
	for i, e := range entries {
		if e.Training != nil {
			t := *e.Training
			t.Dir = r.rel(t.Dir)
			entries[i].Training = &t
		}
		entries[i].Error = r.relText(e.Error)
	}
	return entries
}

// reportSweeps returns sweeps with the paths in their errors relative to
// the run directory.
func (r *runner) reportSweeps(sweeps []SweepRecord) []SweepRecord {
	out := slices.Clone(sweeps)
	for i := range out {
		out[i].Trials = slices.Clone(out[i].Trials)
		for j := range out[i].Trials {
			out[i].Trials[j].Error = r.relText(out[i].Trials[j].Error)
		}
	}
	return out
}

// relText returns s with the run directory's path, where it begins a
// path in s, taken out.
func (r *runner) relText(s string) string {
	return strings.ReplaceAll(s, filepath.Clean(r.dir)+string(filepath.Separator), "")
}

// rel returns path relative to the run directory, with slashes, when it
// is inside it, and path unchanged otherwise.
func (r *runner) rel(path string) string {
	dir, err1 := filepath.Abs(r.dir)
	p, err2 := filepath.Abs(path)
	if err1 != nil || err2 != nil {
		return path
	}
	rel, err := filepath.Rel(dir, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return path
	}
	return filepath.ToSlash(rel)
}

// planProbes marks the datasets without labels as not probed and the
// pretexts that train on labels as not trained when the pretraining
// dataset has none, and takes their stages out of the count. A run with
// no labelled dataset has nothing to report: that is an error.
func (r *runner) planProbes() error {
	probed := 0
	for i := range r.man.Datasets {
		d := &r.man.Datasets[i]
		if len(d.Classes) < 2 {
			d.NotProbed = fmt.Sprintf("it has no labels (%d classes): pretrained on, not probed", len(d.Classes))
			r.log("dataset %s: %s", d.Name, d.NotProbed)
			continue
		}
		probed++
	}
	if probed == 0 {
		return fmt.Errorf("pipeline: run: no dataset to probe: %s has no labels; add a labelled transfer dataset", r.names[0])
	}
	isProbed := make([]bool, len(r.man.Datasets))
	for i, d := range r.man.Datasets {
		isProbed[i] = d.NotProbed == ""
	}
	r.stages = r.cfg.countStages(isProbed, func(name string) bool { return r.untrainable(name) == "" })
	return nil
}

// untrainable says why the pretext name cannot be trained on the run's
// pretraining dataset ("" when it can): it trains on labels, which the
// dataset does not have.
func (r *runner) untrainable(name string) string {
	spec, err := pretext.Lookup(name)
	if err != nil || !spec.Labels || r.man.Datasets[0].NotProbed == "" {
		return ""
	}
	return fmt.Sprintf("not trained: it trains on labels, and %s has none", r.names[0])
}

// hashOf is the first 12 hex digits of the SHA-256 of v's JSON.
func hashOf(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // every value hashed here marshals
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])[:12]
}

// dataset opens, materialises or ingests a dataset of the run.
func (r *runner) dataset(ctx context.Context, s DatasetSpec) (*data.Dataset, error) {
	t0 := time.Now()
	s = s.normal()
	switch {
	case s.Path != "":
		return data.Open(s.Path)
	case s.Builtin != "":
		path, err := builtin.Materialize(s.Builtin, filepath.Join(r.dir, "datasets"))
		if err != nil {
			return nil, err
		}
		return data.Open(path)
	}
	rel, err := ingestDir(s)
	if err != nil {
		return nil, err
	}
	out := filepath.Join(r.dir, rel)
	if _, err := os.Stat(filepath.Join(out, "manifest.json")); err == nil {
		ds, err := data.Open(out)
		if err != nil {
			return nil, err
		}
		return ds, r.stage("ingest", s.name(), out, "skipped", t0)
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return nil, err
	}
	in := s.Ingest
	rep, err := data.Ingest(ctx, data.IngestConfig{Inputs: in.Inputs, Format: in.Format, Out: out,
		Preprocess: in.Preprocess, ValFraction: in.ValFraction, Seed: in.Seed, Classes: in.Classes, Unlabelled: in.Unlabelled}, r.p)
	if err != nil {
		return nil, err
	}
	if len(rep.Skipped) > 0 {
		r.log("ingest %s: skipped %d bad input(s), listed in %s; the first: %s: %s",
			s.name(), len(rep.Skipped), filepath.Join(out, data.IngestReportFile), rep.Skipped[0].Path, rep.Skipped[0].Reason)
	}
	ds, err := data.Open(out)
	if err != nil {
		return nil, err
	}
	return ds, r.stage("ingest", s.name(), out, "done", t0)
}

// fileStat identifies an input file for an ingest stage's hash: a changed,
// added or removed file changes the hash.
type fileStat struct {
	Path    string `json:"path"`
	Size    int64  `json:"size"`
	ModTime int64  `json:"mtime"`
}

func inputStats(inputs []string) ([]fileStat, error) {
	var out []fileStat
	for _, in := range inputs {
		err := filepath.WalkDir(in, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			out = append(out, fileStat{Path: path, Size: fi.Size(), ModTime: fi.ModTime().UnixNano()})
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("pipeline: run: ingest input: %w", err)
		}
	}
	return out, nil
}

// entry pretrains (unless a baseline) and probes one pretext and seed.
func (r *runner) entry(ctx context.Context, name string, seed uint64) (*ReportEntry, error) {
	e := &ReportEntry{Pretext: name, Seed: seed}
	if why := r.untrainable(name); why != "" {
		r.log("%s seed %d: %s", name, seed, why)
		e.Skipped = why
		return e, nil
	}
	var enc *FrozenEncoder
	switch name {
	case BaselinePixels:
	case BaselineRandom:
		cfg := r.cfg.Pretrain.Encoder
		if cfg.Channels == 0 {
			cfg.Channels = r.datasets[0].Manifest().Channels
		}
		var err error
		// As if pretrained on the first dataset, like the other encoders.
		if enc, err = RandomEncoder(cfg, r.datasets[0].Manifest().Size, r.cfg.Pretrain.Size, seed); err != nil {
			return nil, err
		}
	default:
		cfg := r.pretrainConfig(name)
		cfg.Seed = seed
		ckpt, err := r.pretrain(ctx, r.datasets[0], cfg, fmt.Sprintf("%s seed %d", name, seed), fmt.Sprintf("%s-seed%d", name, seed), e)
		if err != nil {
			return nil, err
		}
		if enc, err = LoadEncoder(ckpt); err != nil {
			return nil, err
		}
	}
	label := fmt.Sprintf("%s seed %d", name, seed)
	for i, ds := range r.datasets {
		if r.man.Datasets[i].NotProbed != "" {
			continue
		}
		pc := r.cfg.Probe
		pc.Protocol.Seed = seed
		if enc == nil {
			pc.Stage, pc.Pooled = 0, 0 // raw pixels have no stages
		}
		encHash := "pixels"
		if enc != nil {
			encHash = enc.Hash
		}
		out := filepath.Join(r.dir, "probe", fmt.Sprintf("%s-seed%d-%s-%s.json", name, seed, r.names[i], hashOf(struct {
			Encoder, Dataset string
			Probe            ProbeConfig
			Result           int
		}{encHash, ds.ID(), pc, probeResultVersion})))
		t0 := time.Now()
		what := fmt.Sprintf("%s on %s", label, r.names[i])
		res, err := readProbeResult(out)
		status := "skipped"
		if errors.Is(err, fs.ErrNotExist) {
			status = "done"
			if res, err = Probe(ctx, ProbeRequest{Encoder: enc, Train: ds, Test: ds, Config: pc, CacheDir: filepath.Join(r.dir, "features")}, r.p); err == nil {
				err = writeJSONNew(out, res)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("pipeline: run: probe %s: %w", what, err)
		}
		if err := r.stage("probe", what, out, status, t0); err != nil {
			return nil, err
		}
		rp := ReportProbe{Dataset: r.names[i], Result: res}
		stem := fmt.Sprintf("%s-seed%d", name, seed)
		if r.cfg.LowShot != nil {
			if rp.LowShot, err = r.lowShot(ctx, enc, i, pc, stem); err != nil {
				return nil, err
			}
		}
		if r.cfg.Layers != nil && enc != nil && (i == 0 || r.cfg.Layers.Transfer) {
			if rp.Layers, err = r.layers(ctx, enc, i, pc, stem); err != nil {
				return nil, err
			}
		}
		e.Probes = append(e.Probes, rp)
	}
	return e, nil
}

// probeResultVersion is part of a probe stage's hash: results of an
// earlier version are computed again (2: with the correct test images,
// probe.Result.Correct).
const probeResultVersion = 2

// pretrain runs, resumes or skips the pretraining cfg (with its pretext
// and seed set) on ds, in a directory pretrain/PREFIX-HASH named by the
// dataset and cfg, and returns its final checkpoint; it fills e's
// training summary. label names it in the log.
func (r *runner) pretrain(ctx context.Context, ds *data.Dataset, cfg PretrainConfig, label, prefix string, e *ReportEntry) (string, error) {
	t0 := time.Now()
	cfg.Dataset = ds.Dir()
	cfg.Out = filepath.Join(r.dir, pretrainDir(ds.ID(), cfg, prefix))
	if b, err := os.ReadFile(filepath.Join(cfg.Out, DivergedFile)); err == nil {
		// Training again would diverge again, at the same step.
		return "", fmt.Errorf("pipeline: run: pretrain %s: %w", label, divergedError(strings.TrimSpace(string(b))))
	}

	status := "done"
	resume := false
	if saved, err := LoadPretrainConfig(filepath.Join(cfg.Out, TrainConfigFile)); err == nil {
		if ckpt, err := checkpoint.Latest(cfg.Out); err == nil {
			if m, err := checkpoint.ReadManifest(ckpt); err == nil && m.Step == saved.Steps {
				if err := e.summarise(cfg.Out); err != nil {
					return "", err
				}
				return ckpt, r.stage("pretrain", label, cfg.Out, "skipped", t0)
			}
			resume, status = true, "resumed"
			r.log("pretrain %s: resuming from %s", label, filepath.Base(ckpt))
		}
	}
	if !resume {
		// Nothing worth keeping: a run killed before its first checkpoint.
		if err := os.RemoveAll(cfg.Out); err != nil {
			return "", err
		}
		if err := os.MkdirAll(filepath.Dir(cfg.Out), 0o755); err != nil {
			return "", err
		}
	}
	res, err := Pretrain(ctx, cfg, resume, r.p)
	if errors.Is(err, ErrNonFinite) && ctx.Err() == nil {
		msg := []byte(err.Error() + "\n")
		if werr := fsutil.WriteNew(filepath.Join(cfg.Out, DivergedFile), func(w io.Writer) error { _, err := w.Write(msg); return err }); werr != nil && !errors.Is(werr, fs.ErrExist) {
			err = errors.Join(err, werr)
		}
	}
	if err != nil {
		return "", fmt.Errorf("pipeline: run: pretrain %s: %w", label, err)
	}
	if err := e.summarise(cfg.Out); err != nil {
		return "", err
	}
	return res.Checkpoint, r.stage("pretrain", label, cfg.Out, status, t0)
}

// DivergedFile, in a training directory of a run, holds the error of a
// pretraining that diverged (ErrNonFinite): the run reports it again
// instead of training again to the same divergence.
const DivergedFile = "diverged.txt"

// divergedError is the error of a pretraining that diverged earlier.
type divergedError string

func (e divergedError) Error() string { return string(e) }
func (e divergedError) Unwrap() error { return ErrNonFinite }

// pretrainDir is the training directory, relative to the run directory,
// of the pretraining cfg on the dataset of ID dsID: pretrain/PREFIX-HASH,
// HASH of the dataset and the settings.
func pretrainDir(dsID string, cfg PretrainConfig, prefix string) string {
	hashed := cfg
	hashed.Workers = 0 // results do not depend on it
	hashed.Dataset, hashed.Out = "", ""
	hash := hashOf(struct {
		Dataset string
		Config  PretrainConfig
	}{dsID, hashed})
	return filepath.Join("pretrain", fmt.Sprintf("%s-%s", prefix, hash))
}

func readProbeResult(path string) (*probe.Result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var res probe.Result
	if err := json.Unmarshal(b, &res); err != nil {
		return nil, fmt.Errorf("%s: %w (remove it to probe again)", path, err)
	}
	return &res, nil
}

// writeJSONNew writes v as indented JSON to a new file path, crash-safely.
func writeJSONNew(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return fsutil.WriteNew(path, func(w io.Writer) error { _, err := w.Write(b); return err })
}
