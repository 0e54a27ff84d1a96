package pipeline

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/patchwise-ml/patchwise/data"
	"github.com/patchwise-ml/patchwise/data/builtin"
)

// Stage kinds of a plan.
const (
	StageIngest   = "ingest"   // open, materialise or ingest the datasets
	StageSweep    = "sweep"    // a pretext's learning-rate sweep
	StagePretrain = "pretrain" // one pretext and seed
	StageProbe    = "probe"    // every probe of one pretext (or baseline) and seed
	StageReport   = "report"   // the budgets, then report.json, report.md, report.html, the plots and run.json
)

// ClaimDir is the directory of a run directory that holds the stages'
// claim, done and err files (package claim).
const ClaimDir = "claims"

// Stage is one stage of a run's plan: a unit of work that one process
// carries out, once its inputs (Needs) have finished.
type Stage struct {
	Index   int    `json:"index"` // in the plan, from 0
	ID      string `json:"id"`    // e.g. "pretrain-relpos-seed1"; names its claim files
	Kind    string `json:"kind"`
	Pretext string `json:"pretext,omitempty"`
	Seed    uint64 `json:"seed,omitempty"`
	// Outputs are the files and directories it writes, relative to the
	// run directory; a "*" stands for a hash that is known only once the
	// stages before have run.
	Outputs []string `json:"outputs"`
	// Needs are the IDs of the stages that must finish first.
	Needs []string `json:"needs"`
}

// Plan is a run's stages in an order in which they can run one after
// the other: every stage comes after those it needs. Ingest is first,
// then the sweeps, the pretrainings and the probes, each in the order of
// the config's pretexts and seeds, and the report is last.
type Plan struct {
	Dir    string  `json:"dir"` // the run directory
	Stages []Stage `json:"stages"`
}

// Stage returns the stage of the given ID, or nil.
func (p *Plan) Stage(id string) *Stage {
	for i := range p.Stages {
		if p.Stages[i].ID == id {
			return &p.Stages[i]
		}
	}
	return nil
}

// withSeeds is c with its default seeds.
func (c RunConfig) withSeeds() RunConfig {
	if len(c.Seeds) == 0 {
		c.Seeds = []uint64{1}
	}
	return c
}

// PlanRun returns the stages of the run cfg. It reads the datasets that
// exist already (to name the training directories) and writes nothing.
func PlanRun(cfg RunConfig) (*Plan, error) {
	cfg = cfg.withSeeds()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%w:\n%w", ErrInvalidConfig, err)
	}
	plan := &Plan{Dir: cfg.Out}
	add := func(s Stage) {
		s.Index = len(plan.Stages)
		if s.Needs == nil {
			s.Needs = []string{}
		}
		plan.Stages = append(plan.Stages, s)
	}
	ingest := Stage{ID: StageIngest, Kind: StageIngest}
	for _, s := range append([]DatasetSpec{cfg.Dataset}, cfg.Transfer...) {
		s = s.normal()
		switch {
		case s.Builtin != "":
			ingest.Outputs = append(ingest.Outputs, filepath.ToSlash(filepath.Join("datasets", s.Builtin)))
		case s.Ingest != nil:
			dir, err := ingestDir(s)
			if err != nil {
				return nil, err
			}
			ingest.Outputs = append(ingest.Outputs, filepath.ToSlash(dir))
		}
	}
	if ingest.Outputs == nil {
		ingest.Outputs = []string{}
	}
	add(ingest)

	dsID := plannedDatasetID(cfg)
	r := newRunner(cfg, nil)
	trained := func(p string) bool { return p != BaselineRandom && p != BaselinePixels }
	for _, p := range cfg.Pretexts {
		if trained(p) && len(cfg.Overrides[p].LRSweep) > 0 {
			add(Stage{ID: "sweep-" + p, Kind: StageSweep, Pretext: p, Needs: []string{StageIngest},
				Outputs: []string{fmt.Sprintf("pretrain/%s-*seed%d-*", p, cfg.Seeds[0])}})
		}
	}
	for _, p := range cfg.Pretexts {
		if !trained(p) {
			continue
		}
		needs := []string{StageIngest}
		if len(cfg.Overrides[p].LRSweep) > 0 {
			needs = append(needs, "sweep-"+p)
		}
		for _, seed := range cfg.Seeds {
			prefix := fmt.Sprintf("%s-seed%d", p, seed)
			out := fmt.Sprintf("pretrain/%s-*", prefix)
			if dsID != "" && len(cfg.Overrides[p].LRSweep) == 0 {
				pc := r.pretrainConfig(p)
				pc.Seed = seed
				out = filepath.ToSlash(pretrainDir(dsID, pc, prefix))
			}
			add(Stage{ID: fmt.Sprintf("pretrain-%s-seed%d", p, seed), Kind: StagePretrain, Pretext: p, Seed: seed,
				Needs: slices.Clone(needs), Outputs: []string{out}})
		}
	}
	for _, p := range cfg.Pretexts {
		for _, seed := range cfg.Seeds {
			needs := []string{StageIngest}
			if trained(p) {
				needs = []string{fmt.Sprintf("pretrain-%s-seed%d", p, seed)}
			}
			add(Stage{ID: fmt.Sprintf("probe-%s-seed%d", p, seed), Kind: StageProbe, Pretext: p, Seed: seed,
				Needs: needs, Outputs: []string{fmt.Sprintf("probe/%s-seed%d-*.json", p, seed)}})
		}
	}
	report := Stage{ID: StageReport, Kind: StageReport, Outputs: []string{"budget/", ReportJSONFile, ReportMDFile, ReportHTMLFile, "*.png", RunManifestFile}}
	for _, s := range plan.Stages {
		report.Needs = append(report.Needs, s.ID)
	}
	add(report)
	return plan, nil
}

// ingestDir is the directory, relative to the run directory, that the
// ingest spec s writes: datasets/NAME-HASH, HASH of the spec and of its
// input files' names, sizes and modification times.
func ingestDir(s DatasetSpec) (string, error) {
	inputs, err := inputStats(s.Ingest.Inputs)
	if err != nil {
		return "", err
	}
	return filepath.Join("datasets", fmt.Sprintf("%s-%s", s.name(), hashOf(struct {
		Spec   *IngestSpec
		Inputs []fileStat
	}{s.Ingest, inputs}))), nil
}

// plannedDatasetID is the ID of cfg's pretraining dataset when it is
// known without ingesting: an embedded dataset, a dataset directory, or
// one that a run has ingested already; "" otherwise.
func plannedDatasetID(cfg RunConfig) string {
	s := cfg.Dataset.normal()
	switch {
	case s.Builtin != "":
		id, _ := builtin.ID(s.Builtin)
		return id
	case s.Path != "":
		if ds, err := data.Open(s.Path); err == nil {
			return ds.ID()
		}
	case s.Ingest != nil:
		dir, err := ingestDir(s)
		if err != nil {
			return ""
		}
		if _, err := os.Stat(filepath.Join(cfg.Out, dir, data.ManifestFile)); err == nil {
			if ds, err := data.Open(filepath.Join(cfg.Out, dir)); err == nil {
				return ds.ID()
			}
		}
	}
	return ""
}
