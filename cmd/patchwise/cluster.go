package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/patchwise-ml/patchwise/internal/fsutil"
	"github.com/patchwise-ml/patchwise/pipeline"
	"github.com/patchwise-ml/patchwise/pipeline/claim"
)

// clusterFlags are run's flags for a run spread over processes and
// machines: the plan, one stage or a shard, the status, Slurm scripts.
type clusterFlags struct {
	plan, status, json  bool
	stage, shard        string
	claimTimeout, wait  time.Duration
	slurm, submit       bool
	partition, timeLim  string
	cpusPerTask, signal int
}

func (c *clusterFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&c.plan, "plan", false, "print the run's stages, their outputs and what each needs, and exit")
	fs.BoolVar(&c.status, "status", false, "print each stage's state in the run directory (pending, claimed by whom, finished, failed) and exit")
	fs.BoolVar(&c.json, "json", false, "with --plan or --status: print JSON")
	fs.StringVar(&c.stage, "stage", "", "run one stage `K`: its index or ID (--plan), or \"array\" for $SLURM_ARRAY_TASK_ID or $JOB_COMPLETION_INDEX")
	fs.StringVar(&c.shard, "shard", "", "run every N-th stage from the I-th, then any left, as one of N workers (`I/N`; I may be \"array\")")
	fs.DurationVar(&c.claimTimeout, "claim-timeout", pipeline.DefaultClaimTimeout, "take over a stage whose worker's heartbeat is older than this `duration` (the same for every worker)")
	fs.DurationVar(&c.wait, "wait", 24*time.Hour, "with --stage or --shard: wait this `duration` at most for the stages needed (0: not at all), then exit with status 4")
	fs.BoolVar(&c.slurm, "slurm", false, "write the run's Slurm batch scripts into RUNDIR/slurm and print them")
	fs.BoolVar(&c.submit, "submit", false, "with --slurm: submit them with sbatch (the report after the array job)")
	fs.StringVar(&c.partition, "partition", "", "with --slurm: the Slurm `partition`")
	fs.IntVar(&c.cpusPerTask, "cpus-per-task", 0, "with --slurm: cores per stage (`N`; also the data-loading goroutines)")
	fs.StringVar(&c.timeLim, "time", "", "with --slurm: each task's time `limit` (sbatch --time, e.g. 4:00:00)")
	fs.IntVar(&c.signal, "signal-before", 60, "with --slurm: send SIGTERM this many `seconds` before the time limit, to save a checkpoint")
}

// any reports whether a cluster mode is asked for.
func (c *clusterFlags) any() bool {
	return c.plan || c.status || c.stage != "" || c.shard != "" || c.slurm
}

// check refuses contradictory flags.
func (c *clusterFlags) check() error {
	n := 0
	for _, on := range []bool{c.plan, c.status, c.stage != "", c.shard != "", c.slurm} {
		if on {
			n++
		}
	}
	var errs []error
	if n > 1 {
		errs = append(errs, errors.New("give one of --plan, --status, --stage, --shard and --slurm"))
	}
	if c.json && !c.plan && !c.status {
		errs = append(errs, errors.New("--json goes with --plan or --status"))
	}
	if !c.slurm && (c.submit || c.partition != "" || c.cpusPerTask != 0 || c.timeLim != "") {
		errs = append(errs, errors.New("--submit, --partition, --cpus-per-task and --time go with --slurm"))
	}
	if c.claimTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--claim-timeout %v: want a positive duration", c.claimTimeout))
	}
	if c.wait < 0 {
		errs = append(errs, fmt.Errorf("--wait %v is negative", c.wait))
	}
	return errors.Join(errs...)
}

// arrayIndex is the index of this task of a Slurm job array or a
// Kubernetes Indexed Job.
func arrayIndex() (int, error) {
	for _, v := range []string{"SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX"} {
		if s := os.Getenv(v); s != "" {
			k, err := strconv.Atoi(s)
			if err != nil || k < 0 {
				return 0, fmt.Errorf("$%s = %q is not an index", v, s)
			}
			return k, nil
		}
	}
	return 0, errors.New(`"array": neither $SLURM_ARRAY_TASK_ID nor $JOB_COMPLETION_INDEX is set`)
}

// owner labels this process in its claims: its batch job, if any.
func owner() string {
	host, _ := os.Hostname()
	switch {
	case os.Getenv("SLURM_ARRAY_JOB_ID") != "":
		return fmt.Sprintf("slurm job %s_%s", os.Getenv("SLURM_ARRAY_JOB_ID"), os.Getenv("SLURM_ARRAY_TASK_ID"))
	case os.Getenv("SLURM_JOB_ID") != "":
		return "slurm job " + os.Getenv("SLURM_JOB_ID")
	case os.Getenv("JOB_COMPLETION_INDEX") != "":
		return fmt.Sprintf("%s index %s", host, os.Getenv("JOB_COMPLETION_INDEX"))
	}
	return ""
}

func (c *clusterFlags) run(ctx context.Context, cfgPath string, cfg pipeline.RunConfig, stdout, stderr io.Writer) error {
	usage := func(err error) error { return &usageError{verb: runCmd.name, err: err} }
	if cfg.Out == "" {
		return usage(errors.New("no run directory: give -o or \"out\" in the config"))
	}
	wrap := func(err error) error {
		if errors.Is(err, pipeline.ErrInvalidConfig) {
			return usage(err)
		}
		return err
	}
	switch {
	case c.plan:
		plan, err := pipeline.PlanRun(cfg)
		if err != nil {
			return wrap(err)
		}
		if c.json {
			return printJSON(stdout, plan)
		}
		printPlan(stdout, plan)
		return nil
	case c.status:
		plan, st, err := pipeline.RunStatus(cfg, c.claimTimeout)
		if err != nil {
			return wrap(err)
		}
		if c.json {
			return printJSON(stdout, struct {
				Dir    string                 `json:"dir"`
				Stages []pipeline.StageStatus `json:"stages"`
			}{plan.Dir, st})
		}
		printStatus(stdout, plan, st)
		return nil
	case c.slurm:
		return wrap(c.runSlurm(ctx, cfgPath, cfg, stdout))
	}
	w := pipeline.WorkerConfig{Identity: claim.Self(owner()), ClaimTimeout: c.claimTimeout, Wait: c.wait}
	if c.stage != "" {
		w.Stage = c.stage
		if c.stage == "array" {
			k, err := arrayIndex()
			if err != nil {
				return usage(fmt.Errorf("--stage %w", err))
			}
			w.Stage = strconv.Itoa(k)
		}
		plan, err := pipeline.PlanRun(cfg)
		if err != nil {
			return wrap(err)
		}
		if _, err := plan.ResolveStage(w.Stage); err != nil {
			return usage(fmt.Errorf("--stage: %w", err))
		}
	} else {
		i, n, ok := strings.Cut(c.shard, "/")
		var err error
		if w.Shards, err = strconv.Atoi(n); !ok || err != nil || w.Shards < 1 {
			return usage(fmt.Errorf("--shard %q: want I/N, 0 ≤ I < N", c.shard))
		}
		if i == "array" {
			if w.Shard, err = arrayIndex(); err != nil {
				return usage(fmt.Errorf("--shard %w", err))
			}
		} else if w.Shard, err = strconv.Atoi(i); err != nil || w.Shard < 0 || w.Shard >= w.Shards {
			return usage(fmt.Errorf("--shard %q: want I/N, 0 ≤ I < N", c.shard))
		}
	}
	p := newRunProgress(stderr)
	err := pipeline.Work(ctx, cfg, w, p)
	p.Done()
	if err != nil && ctx.Err() != nil {
		fmt.Fprintf(stderr, "interrupted; the stage's claim is released: run the same command again to go on from the last checkpoint\n")
	}
	if errors.Is(err, pipeline.ErrNotReady) {
		return &notReadyError{err}
	}
	return wrap(err)
}

// notReadyError: a stage's inputs did not finish within --wait; it maps
// to exit status 4.
type notReadyError struct{ err error }

func (e *notReadyError) Error() string { return e.err.Error() }
func (e *notReadyError) Unwrap() error { return e.err }

func printJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

func printPlan(w io.Writer, plan *pipeline.Plan) {
	fmt.Fprintf(w, "run directory %s: %d stages\n\n", plan.Dir, len(plan.Stages))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tstage\tneeds\toutputs")
	for _, s := range plan.Stages {
		needs := strings.Join(s.Needs, ", ")
		if s.Kind == pipeline.StageReport {
			needs = "every other stage"
		}
		if needs == "" {
			needs = "-"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", s.Index, s.ID, needs, strings.Join(s.Outputs, " "))
	}
	tw.Flush()
	fmt.Fprintln(w, "\n(a * stands for a hash known once the stages before have run)")
}

func printStatus(w io.Writer, plan *pipeline.Plan, st []pipeline.StageStatus) {
	fmt.Fprintf(w, "run directory %s\n\n", plan.Dir)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tstage\tstatus\tdetail")
	counts := map[string]int{}
	for _, s := range st {
		counts[s.Status]++
		detail := ""
		switch s.Status {
		case "finished":
			if s.Done.Owner != "" {
				detail = fmt.Sprintf("by %v at %s", s.Done.Identity, s.Done.Finished.Local().Format(time.DateTime))
			}
		case "claimed", "stale":
			detail = fmt.Sprintf("by %v, heartbeat %.1f s ago", s.Claim.Identity, s.HeartbeatAge)
		case "interrupted":
			detail = fmt.Sprintf("by %v: resumes when run again", s.Claim.Identity)
		case "failed":
			detail = fmt.Sprintf("on %s (pid %d) at %s: %s", s.Failure.Host, s.Failure.PID, s.Failure.Time.Local().Format(time.DateTime),
				strings.ReplaceAll(s.Failure.Error, "\n", " "))
		case "pending":
			detail = "needs " + strings.Join(s.Needs, ", ")
			if len(s.Needs) == 0 {
				detail = ""
			} else if s.Kind == pipeline.StageReport {
				detail = "needs every other stage"
			}
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", s.Index, s.ID, s.Status, detail)
	}
	tw.Flush()
	var parts []string
	for _, k := range []string{"finished", "claimed", "stale", "interrupted", "failed", "pending"} {
		if counts[k] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[k], k))
		}
	}
	fmt.Fprintf(w, "\n%s\n", strings.Join(parts, ", "))
}

// runSlurm writes, prints and with --submit submits the Slurm scripts.
func (c *clusterFlags) runSlurm(ctx context.Context, cfgPath string, cfg pipeline.RunConfig, stdout io.Writer) error {
	var err error
	if cfg.Out, err = filepath.Abs(cfg.Out); err != nil {
		return err
	}
	if cfgPath, err = filepath.Abs(cfgPath); err != nil {
		return err
	}
	bin, err := os.Executable()
	if err != nil {
		return fmt.Errorf("slurm: the patchwise binary: %w", err)
	}
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	plan, err := pipeline.PlanRun(cfg)
	if err != nil {
		return err
	}
	sc, err := plan.Slurm(pipeline.SlurmOptions{Binary: bin, Config: cfgPath, Chdir: wd, Partition: c.partition,
		CPUsPerTask: c.cpusPerTask, Time: c.timeLim, ClaimTimeout: c.claimTimeout, SignalSeconds: c.signal})
	if err != nil {
		return &usageError{verb: runCmd.name, err: err}
	}
	if err := pipeline.PrepareRun(cfg); err != nil {
		return err
	}
	dir := filepath.Join(cfg.Out, "slurm")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	stages, report := filepath.Join(dir, "stages.sbatch"), filepath.Join(dir, "report.sbatch")
	for path, text := range map[string]string{stages: sc.Stages, report: sc.Report} {
		if err := fsutil.Replace(path, func(w io.Writer) error { _, err := io.WriteString(w, text); return err }); err != nil {
			return fmt.Errorf("slurm: %w", err)
		}
	}
	fmt.Fprintf(stdout, "# %s\n%s\n# %s\n%s\n", stages, sc.Stages, report, sc.Report)
	if !c.submit {
		fmt.Fprintf(stdout, "# submit with:\njob=$(sbatch --parsable %s) && sbatch --dependency=afterok:${job%%%%;*} %s\n", stages, report)
		return nil
	}
	sbatch := func(args ...string) (string, error) {
		out, err := exec.CommandContext(ctx, "sbatch", append([]string{"--parsable"}, args...)...).CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("slurm: sbatch %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
		id, _, _ := strings.Cut(strings.TrimSpace(string(out)), ";")
		return id, nil
	}
	arrayJob, err := sbatch(stages)
	if err != nil {
		return err
	}
	reportJob, err := sbatch("--dependency=afterok:"+arrayJob, report)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "submitted: array job %s (stages %s), report job %s (after it)\n", arrayJob, sc.Array, reportJob)
	return nil
}
