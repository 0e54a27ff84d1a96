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
       [--plan [--json] | --status [--json] | --stage K | --shard I/N |
        --slurm [--submit] [--partition P] [--cpus-per-task N] [--time T]]

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
classes.txt in an input folder).

On a cluster. A run is a plan of stages (--plan lists them, their output
directories and the stages each needs; --json for a program): ingest,
the learning-rate sweeps, one pretraining per pretext and seed, one probe
stage per pretext and seed, the report. Workers on several machines that
share the run directory on a shared filesystem carry them out: --stage K
runs stage K (its index or ID; "array" takes the index from
SLURM_ARRAY_TASK_ID, or from JOB_COMPLETION_INDEX in a Kubernetes Indexed
Job), waiting up to --wait for the stages it needs; --shard I/N runs
every N-th stage from the I-th, then helps with whatever is left, until
every stage has finished ("array/N" takes I from the environment). A
stage is claimed by creating RUNDIR/claims/STAGE.claim-G exclusively,
with the worker's host, pid and a heartbeat refreshed every quarter of
--claim-timeout; a claim silent for longer is taken over (its worker
died), a finished stage (STAGE.done) is never run again, and a failure
is kept in STAGE.err. The report stage writes the same report.json,
byte for byte, as a run on one machine. --status shows each stage:
pending, claimed (by whom, the heartbeat's age), finished or failed with
its error. Exit status 4: the stage's inputs did not finish in time.

--slurm writes RUNDIR/slurm/stages.sbatch, an array job of every stage but
the report, and RUNDIR/slurm/report.sbatch, prints them and, with
--submit, submits them with sbatch, the report with
--dependency=afterok on the array. Tasks are requeueable and get SIGTERM
60 s before their time limit: a pretraining saves a checkpoint, and the
requeued task resumes from it.`,
	example: `patchwise run examples/run.json
patchwise run examples/run.json -o runs/exp2   # the same experiment elsewhere
patchwise run examples/run.json --plan
patchwise run examples/run.json --shard 0/2 & patchwise run examples/run.json --shard 1/2
patchwise run examples/run.json --slurm --partition cpu --cpus-per-task 8 --time 4:00:00 --submit
patchwise run examples/run.json --status`,
}

func init() { runCmd.run = runRun }

func runRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet(runCmd)
	out := fs.String("o", "", "run `dir`ectory (default: the config's \"out\")")
	workers := fs.Int("workers", 0, "data-loading goroutines (0: one per core); results do not depend on it")
	var c clusterFlags
	c.register(fs)
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
	if err := c.check(); err != nil {
		return usage(err)
	}
	if c.any() {
		return c.run(ctx, pos[0], cfg, stdout, stderr)
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
