package pipeline

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// SlurmOptions are the settings of the Slurm batch scripts of a plan.
type SlurmOptions struct {
	// Binary is the patchwise executable and Config the run's config
	// file, as the compute nodes see them (absolute paths on the shared
	// filesystem); the run directory is the plan's.
	Binary, Config string
	// Chdir is the tasks' working directory (relative paths in the
	// config are read from it); default sbatch's, where it was run.
	Chdir string
	// Partition, CPUsPerTask and Time ("2:00:00", "1-0", …: sbatch
	// --time) are passed to sbatch when set; CPUsPerTask is also the
	// data-loading goroutines (RunConfig.Pretrain.Workers), which the
	// results do not depend on.
	Partition   string
	CPUsPerTask int
	Time        string
	// ClaimTimeout is the workers' claim timeout (WorkerConfig); 0 means
	// DefaultClaimTimeout.
	ClaimTimeout time.Duration
	// SignalSeconds is how long before the time limit Slurm sends
	// SIGTERM, for the pretraining to save a checkpoint; default 60.
	SignalSeconds int
}

// SlurmScripts are the two batch scripts of a run: the array job of
// every stage but the report, and the report job, to be submitted with
// --dependency=afterok on the array job.
type SlurmScripts struct {
	Stages string // the array job, one task per stage
	Report string // the report stage
	Array  string // the array's indices, "0-K"
}

var slurmTime = regexp.MustCompile(`^(\d+-)?\d+(:\d+){0,2}$|^\d+-\d+$`)

// Validate checks the options.
func (o SlurmOptions) Validate() error {
	var errs []string
	if o.Binary == "" || o.Config == "" {
		errs = append(errs, "the patchwise binary and the config file must be named")
	}
	if o.CPUsPerTask < 0 {
		errs = append(errs, fmt.Sprintf("cpus-per-task %d is negative", o.CPUsPerTask))
	}
	if o.Time != "" && !slurmTime.MatchString(o.Time) {
		errs = append(errs, fmt.Sprintf("time %q: want minutes, MM:SS, HH:MM:SS, D-HH or D-HH:MM:SS (sbatch --time)", o.Time))
	}
	if strings.ContainsAny(o.Partition, " \t\n'\"") {
		errs = append(errs, fmt.Sprintf("partition %q has spaces or quotes", o.Partition))
	}
	if o.SignalSeconds < 0 {
		errs = append(errs, fmt.Sprintf("signal seconds %d is negative", o.SignalSeconds))
	}
	if len(errs) > 0 {
		return fmt.Errorf("pipeline: slurm: %s", strings.Join(errs, "; "))
	}
	return nil
}

// slurmRun is the body of a batch script that runs the command cmd and,
// when the script gets SIGTERM while its job is still running (the time
// limit's warning, scancel --signal=TERM; not scancel, which ends the
// job), passes it on, and once patchwise has saved a checkpoint and
// exited with 130, requeues the task (task: its Slurm ID) to resume. A
// task that requeues itself never ends as failed, so that the report's
// afterok dependency still holds.
func slurmRun(cmd, task string, signal int) string {
	return fmt.Sprintf(`#
# SIGTERM %d s before the time limit (--signal), or from
# scancel --batch --signal=TERM, while the job runs: patchwise saves a
# checkpoint, releases its claim and exits with 130, and the task requeues
# itself to resume from the checkpoint. A cancelled job is not requeued.
task=%s
signalled=0
trap 'signalled=1; kill -TERM "$pid" 2>/dev/null' TERM
%s &
pid=$!
wait "$pid"
rc=$?
if [ "$signalled" = 1 ]; then
	wait "$pid"
	rc=$?
	if [ "$rc" = 130 ] && scontrol show job "$task" | grep -q 'JobState=RUNNING'; then
		echo "patchwise: requeueing $task to resume from its checkpoint" >&2
		scontrol requeue "$task"
	fi
fi
exit "$rc"
`, signal, task, cmd)
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=+,@%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Slurm writes the batch scripts that carry out the plan on a Slurm
// cluster: an array job with one task per stage but the report (task K
// runs `patchwise run CONFIG -o DIR --stage array`, stage K, waiting for
// the stages it needs), and the report job. Tasks may run on any nodes
// that share the run directory. Each is requeueable (a node failure
// requeues it) and gets SIGTERM SignalSeconds before its time limit, on
// which a pretraining saves a checkpoint and releases its claim and the
// task requeues itself, to resume from the checkpoint (slurmRun). The
// logs go to DIR/slurm/. The plan's Dir must be absolute.
func (p *Plan) Slurm(o SlurmOptions) (SlurmScripts, error) {
	if err := o.Validate(); err != nil {
		return SlurmScripts{}, err
	}
	if !strings.HasPrefix(p.Dir, "/") {
		return SlurmScripts{}, fmt.Errorf("pipeline: slurm: the run directory %q must be an absolute path", p.Dir)
	}
	if o.ClaimTimeout == 0 {
		o.ClaimTimeout = DefaultClaimTimeout
	}
	if o.SignalSeconds == 0 {
		o.SignalSeconds = 60
	}
	last := len(p.Stages) - 2 // the report is the last stage
	array := fmt.Sprintf("0-%d", last)
	dir := shellQuote(p.Dir)
	logs := p.Dir + "/slurm"
	header := func(b *strings.Builder, name, output string) {
		fmt.Fprintf(b, "#SBATCH --job-name=%s\n", name)
		fmt.Fprintf(b, "#SBATCH --output=%s\n", shellQuote(output))
		b.WriteString("#SBATCH --open-mode=append\n")
		b.WriteString("#SBATCH --requeue\n")
		fmt.Fprintf(b, "#SBATCH --signal=B:TERM@%d\n", o.SignalSeconds)
		if o.Partition != "" {
			fmt.Fprintf(b, "#SBATCH --partition=%s\n", o.Partition)
		}
		if o.CPUsPerTask > 0 {
			fmt.Fprintf(b, "#SBATCH --cpus-per-task=%d\n", o.CPUsPerTask)
		}
		if o.Time != "" {
			fmt.Fprintf(b, "#SBATCH --time=%s\n", o.Time)
		}
		if o.Chdir != "" {
			fmt.Fprintf(b, "#SBATCH --chdir=%s\n", shellQuote(o.Chdir))
		}
	}
	cmd := fmt.Sprintf("%s run %s -o %s --claim-timeout %s", shellQuote(o.Binary), shellQuote(o.Config), dir, o.ClaimTimeout)
	if o.CPUsPerTask > 0 {
		cmd += fmt.Sprintf(" --workers %d", o.CPUsPerTask)
	}
	var ids []string
	for _, s := range p.Stages[:last+1] {
		ids = append(ids, fmt.Sprintf("#   %2d %s", s.Index, s.ID))
	}

	var st strings.Builder
	st.WriteString("#!/bin/bash\n")
	header(&st, "patchwise-stages", logs+"/stages-%A_%a.out")
	fmt.Fprintf(&st, "#SBATCH --array=%s\n", array)
	fmt.Fprintf(&st, `#
# The stages of the Patchwise run in %s but its report, one array task
# each (patchwise run CONFIG --plan lists them):
%s
# A task waits for the stages its stage needs, claims its stage in
# %s/claims (patchwise run CONFIG --status shows the claims) and exits
# at once if the stage has finished.
`, p.Dir, strings.Join(ids, "\n"), p.Dir)
	st.WriteString(slurmRun(cmd+" --stage array", "${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}", o.SignalSeconds))

	var rp strings.Builder
	rp.WriteString("#!/bin/bash\n")
	header(&rp, "patchwise-report", logs+"/report-%j.out")
	rp.WriteString("#SBATCH --kill-on-invalid-dep=yes\n")
	fmt.Fprintf(&rp, `#
# The report of the Patchwise run in %s, once every other stage has
# finished: submit it with --dependency=afterok on the array job. It
# writes report.json, report.md, report.html, the plots and run.json. If
# a stage fails, Slurm cancels it (--kill-on-invalid-dep): once the stage
# is fixed and run again, submit this script again.
`, p.Dir)
	rp.WriteString(slurmRun(cmd+" --stage "+StageReport, "$SLURM_JOB_ID", o.SignalSeconds))
	return SlurmScripts{Stages: st.String(), Report: rp.String(), Array: array}, nil
}
