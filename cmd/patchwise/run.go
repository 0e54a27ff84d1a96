package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/patchwise-ml/patchwise/data/builtin"
	"github.com/patchwise-ml/patchwise/pipeline"
)

var runCmd = &command{
	name:    "run",
	summary: "run a batch experiment from a config: ingest, pretrain, probe, report",
	usage: `patchwise run CONFIG.json [-o RUNDIR] [--workers N]

Run carries out the experiment CONFIG.json describes (pipeline.RunConfig;
examples/run.json is a commented example): it ingests or opens the
datasets, pretrains an encoder with each pretext and seed, probes each
encoder on the pretraining dataset and on every transfer dataset, and
writes report.json, report.md, report.html and PNG plots into the run
directory ("out" in the config, or -o). It prints the report's answer:
whether each pretext beats the untrained encoder, with its intervals,
and the probes' accuracy.

Besides the shared settings, a config can give a pretext its own budget
("overrides": {"relpos": {"lr": 0.1, "batch": 64, "steps": 400}}) or a
learning-rate sweep chosen on the pretext's own validation loss
({"lr_sweep": [0.02, 0.05, 0.1]}), and add layer-wise probes ("layers":
{}) and low-shot probes ("low_shot": {"fractions": [0.01, 0.1]}); see
pipeline.RunConfig.

Every stage's output is named by a hash of its inputs and settings: running
the same config again skips the finished stages (the log says so), resumes
an interrupted pretraining from its latest checkpoint and writes the same
report. A run directory holding another config is refused. Ctrl-C saves a
checkpoint of the pretraining in progress and exits with status 130; run
the same command to go on. run.json records the config, the dataset IDs,
the versions and each stage's time.

A dataset in CONFIG.json is a dataset directory, {"path": DIR}; an
embedded dataset, {"builtin": NAME} or {"path": "builtin:NAME"}, which run
writes into RUNDIR/datasets (` + strings.Join(builtin.Names, ", ") + `);
or images to ingest, {"ingest": {"inputs": [...], "classes": [...], ...}},
"classes" naming the classes in label order (default: the sources' own, or
classes.txt in an input folder).`,
	example: `patchwise run examples/run.json
patchwise run examples/run.json -o runs/exp2   # the same experiment elsewhere`,
}

func init() { runCmd.run = runRun }

func runRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet(runCmd)
	out := fs.String("o", "", "run `dir`ectory (default: the config's \"out\")")
	workers := fs.Int("workers", 0, "data-loading goroutines (0: one per core); results do not depend on it")
	pos, err := parseFlagsArgs(runCmd, fs, args, stdout)
	if err != nil {
		return err
	}
	usage := func(errs ...error) error { return &usageError{verb: runCmd.name, err: errors.Join(errs...)} }
	if len(pos) != 1 {
		return usage(fmt.Errorf("want one CONFIG.json, got %d arguments", len(pos)))
	}
	cfg, err := pipeline.LoadRunConfig(pos[0])
	if err != nil {
		return usage(err)
	}
	if *out != "" {
		cfg.Out = *out
	}
	if *workers != 0 {
		cfg.Pretrain.Workers = *workers
	}
	return runExperiment(ctx, runCmd.name, cfg, stdout, stderr)
}

// runExperiment runs cfg (run and compare), logging each stage on stderr,
// and prints the report's tables.
func runExperiment(ctx context.Context, verb string, cfg pipeline.RunConfig, stdout, stderr io.Writer) error {
	p := newRunProgress(stderr)
	rep, err := pipeline.Run(ctx, cfg, p)
	p.Done()
	if errors.Is(err, pipeline.ErrInvalidConfig) {
		return &usageError{verb: verb, err: err}
	}
	if rep != nil { // also when some pretrainings diverged
		fmt.Fprint(stdout, rep.Summary())
		fmt.Fprintf(stdout, "\nwritten: %s, %s (and %s)\n", filepath.Join(cfg.Out, pipeline.ReportMDFile),
			filepath.Join(cfg.Out, pipeline.ReportHTMLFile), pipeline.ReportJSONFile)
	}
	if err != nil && ctx.Err() != nil {
		fmt.Fprintf(stderr, "interrupted; run the same command again to go on from the last checkpoint\n")
	}
	return err
}

// runProgress is pretrain's progress bar plus one log line per stage,
// which is printed whether or not stderr is a terminal.
type runProgress struct {
	*pretrainProgress
	w io.Writer
}

func newRunProgress(stderr io.Writer) *runProgress {
	return &runProgress{pretrainProgress: newPretrainProgress(stderr), w: stderr}
}

// Log implements pipeline.Logger.
func (p *runProgress) Log(line string) {
	if p.bar != nil && p.bar.bar != nil {
		_ = p.bar.bar.Clear()
	}
	fmt.Fprintln(p.w, line)
}
