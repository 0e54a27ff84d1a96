package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/patchwise-ml/patchwise/pipeline"
	"github.com/patchwise-ml/patchwise/pipeline/claim"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// TestMain removes the binary that patchwiseBinary built.
func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// patchwiseBinary builds patchwise once for the tests that run it as
// separate processes.
func patchwiseBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		defer func(t0 time.Time) { t.Logf("go build took %.1f s", time.Since(t0).Seconds()) }(time.Now())
		dir, err := os.MkdirTemp("", "patchwise-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "patchwise")
		if out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// clusterConfig is a small comparison for the tests of a run spread over
// processes: two pretexts, one seed; rotation trains long enough (100
// steps, a checkpoint every 5) to be stopped on the way.
const clusterConfig = `{
  "dataset": {"path": "builtin:fashion-mnist-small"},
  "pretexts": ["rotation", "ae-linear"],
  "pretrain": {"steps": 30, "batch": 32, "workers": 1, "encoder": {"widths": [4, 8]}, "val_every": -1, "val_batches": 2, "checkpoint_every": 5},
  "overrides": {"rotation": {"steps": 100}},
  "probe": {"protocol": {"grid": [0.001]}}
}`

var (
	localOnce   sync.Once
	localReport []byte
	localErr    error
)

// clusterSetup writes clusterConfig into a new folder and returns its
// path, with the report.json of the config run in one process.
func clusterSetup(t *testing.T) (cfg string, want []byte) {
	t.Helper()
	dir := t.TempDir()
	cfg = filepath.Join(dir, "cfg.json")
	if err := os.WriteFile(cfg, []byte(clusterConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	localOnce.Do(func() {
		defer func(t0 time.Time) { t.Logf("the run in one process took %.1f s", time.Since(t0).Seconds()) }(time.Now())
		out := filepath.Join(dir, "local")
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), []string{"run", cfg, "-o", out}, &stdout, &stderr); code != exitOK {
			localErr = fmt.Errorf("local run: exit %d\n%s", code, stderr.String())
			return
		}
		localReport, localErr = os.ReadFile(filepath.Join(out, pipeline.ReportJSONFile))
	})
	if localErr != nil {
		t.Fatal(localErr)
	}
	return cfg, localReport
}

// checkReport fails unless dir's report.json is want, byte for byte.
func checkReport(t *testing.T, dir string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(filepath.Join(dir, pipeline.ReportJSONFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the report of a run in one process", filepath.Join(dir, pipeline.ReportJSONFile))
	}
}

// rotationCheckpoint waits until the run in dir has a checkpoint of
// rotation at step 10 or later.
func rotationCheckpoint(t *testing.T, dir string, logs func() string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		m, _ := filepath.Glob(filepath.Join(dir, "pretrain", "rotation-seed1-*", "ckpt-step-000000[1-9]*"))
		if len(m) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no rotation checkpoint after 90 s; logs:\n%s", logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type worker struct {
	cmd    *exec.Cmd
	stderr bytes.Buffer
}

func startWorker(t *testing.T, bin string, args ...string) *worker {
	t.Helper()
	w := &worker{cmd: exec.Command(bin, args...)}
	w.cmd.Stderr = &w.stderr
	// Not a task of the batch job the test may run in: its claims are
	// labelled with the host and pid.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SLURM_") && !strings.HasPrefix(kv, "JOB_COMPLETION_INDEX=") {
			w.cmd.Env = append(w.cmd.Env, kv)
		}
	}
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if w.cmd.ProcessState == nil {
			w.cmd.Process.Kill()
			w.cmd.Wait()
		}
	})
	return w
}

// TestShardWorkers starts two `run --shard` processes on one run
// directory: every stage runs once and the report is a single process's;
// then a worker killed with SIGKILL leaves its claim, which the other
// takes over once it is stale, resuming the pretraining.
func TestShardWorkers(t *testing.T) {
	if testing.Short() {
		t.Skip("short: builds patchwise and runs a comparison as processes")
	}
	isolateCache(t)
	bin := patchwiseBinary(t)
	cfg, want := clusterSetup(t)

	t.Run("once", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "run")
		ws := []*worker{
			startWorker(t, bin, "run", cfg, "-o", out, "--shard", "0/2", "--claim-timeout", "5s"),
			startWorker(t, bin, "run", cfg, "-o", out, "--shard", "1/2", "--claim-timeout", "5s"),
		}
		for i, w := range ws {
			if err := w.cmd.Wait(); err != nil {
				t.Fatalf("worker %d: %v\n%s", i, err, w.stderr.String())
			}
		}
		logs := ws[0].stderr.String() + ws[1].stderr.String()
		for _, id := range []string{"ingest", "pretrain-rotation-seed1", "pretrain-ae-linear-seed1", "probe-rotation-seed1", "probe-ae-linear-seed1", "report"} {
			if n := strings.Count(logs, " "+id+": claimed by"); n != 1 {
				t.Errorf("%s claimed %d times", id, n)
			}
			if n := strings.Count(logs, " "+id+": finished in"); n != 1 {
				t.Errorf("%s finished %d times", id, n)
			}
		}
		if t.Failed() {
			t.Logf("logs:\n%s", logs)
		}
		checkReport(t, out, want)
	})

	t.Run("sigkill", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "run")
		ws := []*worker{
			startWorker(t, bin, "run", cfg, "-o", out, "--shard", "0/2", "--claim-timeout", "2s"),
			startWorker(t, bin, "run", cfg, "-o", out, "--shard", "1/2", "--claim-timeout", "2s"),
		}
		logs := func() string { return ws[0].stderr.String() + "\n--\n" + ws[1].stderr.String() }
		rotationCheckpoint(t, out, logs)
		var rec claim.Record
		b, err := os.ReadFile(filepath.Join(out, pipeline.ClaimDir, "pretrain-rotation-seed1.claim-1"))
		if err != nil || json.Unmarshal(b, &rec) != nil {
			t.Fatalf("the rotation claim: %v %s", err, b)
		}
		victim, survivor := ws[0], ws[1]
		if ws[1].cmd.Process.Pid == rec.PID {
			victim, survivor = ws[1], ws[0]
		} else if ws[0].cmd.Process.Pid != rec.PID {
			t.Fatalf("the rotation claim names pid %d, not a worker's", rec.PID)
		}
		if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		victim.cmd.Wait()
		if err := survivor.cmd.Wait(); err != nil {
			t.Fatalf("survivor: %v\n%s", err, logs())
		}
		log := survivor.stderr.String()
		host := hostname(t)
		for _, want := range []string{
			fmt.Sprintf("pretrain-rotation-seed1: claimed by %s pid %d, claim 2; took it over from %s pid %d", host, survivor.cmd.Process.Pid, host, rec.PID),
			"pretrain rotation seed 1: resuming from ckpt-step-",
			"every stage has finished",
		} {
			if !strings.Contains(log, want) {
				t.Errorf("the survivor's log lacks %q:\n%s", want, log)
			}
		}
		checkReport(t, out, want)
	})
}

func hostname(t *testing.T) string {
	h, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// freePorts returns a port p such that p and p+1 are free for TCP on
// this machine.
func freePorts(t *testing.T) int {
	for p := 20000 + os.Getpid()%10000; p < 65000; p += 2 {
		a, err := net.Listen("tcp", fmt.Sprintf(":%d", p))
		if err != nil {
			continue
		}
		b, err := net.Listen("tcp", fmt.Sprintf(":%d", p+1))
		a.Close()
		if err != nil {
			continue
		}
		b.Close()
		return p
	}
	t.Fatal("no two free ports")
	return 0
}

// TestSlurm starts a single-node Slurm cluster (scripts/slurm-local),
// submits a small comparison with run --slurm --submit, stops the
// pretraining task half-way with SIGTERM as a time limit would, checks
// that the task requeued itself and resumed from its checkpoint, and
// that the report is byte for byte a single process's. It needs root
// and Debian's slurmctld, slurmd, slurm-client and munge; it skips
// without them unless PATCHWISE_REQUIRE_SLURM=1.
func TestSlurm(t *testing.T) {
	if testing.Short() {
		t.Skip("short: starts a Slurm cluster")
	}
	var missing []string
	for _, b := range []string{"munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel", "sinfo"} {
		if _, err := exec.LookPath(b); err != nil {
			missing = append(missing, b)
		}
	}
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	if len(missing) > 0 {
		if os.Getenv("PATCHWISE_REQUIRE_SLURM") == "1" {
			t.Fatalf("PATCHWISE_REQUIRE_SLURM=1 but missing: %s (apt-get install slurmctld slurmd slurm-client munge)", strings.Join(missing, ", "))
		}
		t.Skipf("no Slurm (missing %s): apt-get install slurmctld slurmd slurm-client munge, as root", strings.Join(missing, ", "))
	}
	isolateCache(t)
	bin := patchwiseBinary(t)
	cfg, want := clusterSetup(t)

	// The cluster.
	script, err := filepath.Abs("../../scripts/slurm-local")
	if err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(t.TempDir(), "slurm")
	start := exec.Command(script, "start", state)
	start.Env = append(os.Environ(), "PATCHWISE_SLURM_PORT="+strconv.Itoa(freePorts(t)))
	t0 := time.Now()
	b, err := start.CombinedOutput()
	if err != nil {
		t.Fatalf("slurm-local start: %v\n%s", err, b)
	}
	t.Cleanup(func() {
		if b, err := exec.Command(script, "stop", state).CombinedOutput(); err != nil {
			t.Errorf("slurm-local stop: %v\n%s", err, b)
		}
	})
	m := regexp.MustCompile(`export SLURM_CONF=(\S+)`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("slurm-local start printed %q", b)
	}
	env := append(os.Environ(), "SLURM_CONF="+string(m[1]))
	t.Logf("cluster up in %.1f s", time.Since(t0).Seconds())
	slurm := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}

	out := filepath.Join(t.TempDir(), "run")
	submit := exec.Command(bin, "run", cfg, "-o", out, "--slurm", "--submit", "--cpus-per-task", "1", "--time", "10:00", "--claim-timeout", "20s")
	submit.Env = env
	b, err = submit.CombinedOutput()
	if err != nil {
		t.Fatalf("run --slurm --submit: %v\n%s", err, b)
	}
	ids := regexp.MustCompile(`submitted: array job (\d+) \(stages 0-4\), report job (\d+)`).FindSubmatch(b)
	if ids == nil {
		t.Fatalf("run --slurm --submit printed:\n%s", b)
	}
	array, report := string(ids[1]), string(ids[2])
	logs := func() string {
		var s strings.Builder
		files, _ := filepath.Glob(filepath.Join(out, "slurm", "*.out"))
		for _, f := range files {
			b, _ := os.ReadFile(f)
			fmt.Fprintf(&s, "== %s\n%s", filepath.Base(f), b)
		}
		b, _ := os.ReadFile(filepath.Join(state, "slurmctld.log"))
		lines := strings.Split(string(b), "\n")
		fmt.Fprintf(&s, "== slurmctld.log (end)\n%s", strings.Join(lines[max(0, len(lines)-30):], "\n"))
		return s.String()
	}

	// Stop the pretraining of rotation (task 1) half-way, as its time
	// limit's warning would.
	rotationCheckpoint(t, out, logs)
	task := array + "_1"
	// scancel tries again 5 s later when the job is being requeued as it
	// signals: the task may requeue itself that fast. Once the signal has
	// come, stop scancel so that it does not signal the requeued task.
	scancel := exec.Command("scancel", "--batch", "--signal=TERM", task)
	scancel.Env = env
	var scancelOut bytes.Buffer
	scancel.Stdout, scancel.Stderr = &scancelOut, &scancelOut
	if err := scancel.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- scancel.Wait() }()
	taskLog := filepath.Join(out, "slurm", "stages-"+task+".out")
	for signalled := false; !signalled; {
		select {
		case err := <-exited:
			if err != nil {
				t.Fatalf("scancel: %v\n%s", err, scancelOut.String())
			}
			signalled = true
		case <-time.After(100 * time.Millisecond):
			if b, _ := os.ReadFile(taskLog); bytes.Contains(b, []byte("interrupted; claim released")) {
				scancel.Process.Kill()
				<-exited
				signalled = true
			}
		}
	}

	deadline := time.Now().Add(150 * time.Second)
	for strings.TrimSpace(slurm("squeue", "-h", "-j", array+","+report)) != "" {
		if time.Now().After(deadline) {
			t.Fatalf("jobs not finished after 150 s:\n%s\n%s", slurm("squeue"), logs())
		}
		time.Sleep(500 * time.Millisecond)
	}
	if s := slurm("scontrol", "show", "job", report); !strings.Contains(s, "JobState=COMPLETED") {
		t.Fatalf("report job:\n%s\n%s", s, logs())
	}
	if s := slurm("scontrol", "show", "job", task); !strings.Contains(s, "Restarts=1") || !strings.Contains(s, "JobState=COMPLETED") {
		t.Errorf("the stopped task was not requeued once:\n%s", s)
	}
	tlog, err := os.ReadFile(taskLog)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"pretrain-rotation-seed1: interrupted; claim released",
		"requeueing " + task,
		"claim 2; claim 1 was interrupted",
		"pretrain rotation seed 1: resuming from ckpt-step-",
	} {
		if !strings.Contains(string(tlog), want) {
			t.Errorf("task %s's log lacks %q:\n%s", task, want, tlog)
		}
	}
	// Each step of the resumed pretraining is logged once, to the last.
	dirs, _ := filepath.Glob(filepath.Join(out, "pretrain", "rotation-seed1-*"))
	if len(dirs) != 1 {
		t.Fatalf("rotation training directories %q", dirs)
	}
	recs, err := pipeline.ReadMetrics(filepath.Join(dirs[0], pipeline.MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	step := 0
	for _, r := range recs {
		if !r.IsVal() {
			if r.Step != step+1 {
				t.Fatalf("metrics: step %d after %d", r.Step, step)
			}
			step = r.Step
		}
	}
	if step != 100 {
		t.Errorf("the pretraining ended at step %d, want 100", step)
	}
	checkReport(t, out, want)
	if t.Failed() {
		t.Logf("logs:\n%s", logs())
	}
	t.Logf("cluster started, job submitted, stopped, requeued and finished in %.1f s", time.Since(t0).Seconds())
}

// TestRunClusterFlags checks run's flags for a run spread over workers,
// without running a stage.
func TestRunClusterFlags(t *testing.T) {
	isolateCache(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "cfg.json")
	if err := os.WriteFile(cfg, []byte(clusterConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "run")
	call := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), append([]string{"run", cfg, "-o", out}, args...), &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	code, stdout, _ := call("--plan")
	if code != exitOK || !strings.Contains(stdout, "3  probe-rotation-seed1      pretrain-rotation-seed1") {
		t.Errorf("--plan: exit %d\n%s", code, stdout)
	}
	var plan pipeline.Plan
	if code, stdout, _ = call("--plan", "--json"); code != exitOK || json.Unmarshal([]byte(stdout), &plan) != nil || len(plan.Stages) != 6 {
		t.Errorf("--plan --json: exit %d\n%s", code, stdout)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("--plan wrote the run directory")
	}
	// A stage whose inputs have not finished: exit 4 at once with --wait 0.
	t.Setenv("SLURM_ARRAY_TASK_ID", "") // unset: JOB_COMPLETION_INDEX is read
	t.Setenv("JOB_COMPLETION_INDEX", "3")
	code, _, stderr := call("--stage", "array", "--wait", "0")
	if code != exitNotReady || !strings.Contains(stderr, "probe-rotation-seed1: needs pretrain-rotation-seed1 (pending)") {
		t.Errorf("--stage array (3) without its inputs: exit %d\n%s", code, stderr)
	}
	code, stdout, _ = call("--status")
	if code != exitOK || !strings.Contains(stdout, "3  probe-rotation-seed1      pending  needs pretrain-rotation-seed1") || !strings.Contains(stdout, "6 pending") {
		t.Errorf("--status: exit %d\n%s", code, stdout)
	}
	code, stdout, _ = call("--slurm", "--partition", "cpu")
	if code != exitOK || !strings.Contains(stdout, "#SBATCH --array=0-4") || !strings.Contains(stdout, "sbatch --dependency=afterok:") {
		t.Errorf("--slurm: exit %d\n%s", code, stdout)
	}
	for _, f := range []string{"stages.sbatch", "report.sbatch"} {
		if b, err := os.ReadFile(filepath.Join(out, "slurm", f)); err != nil || !strings.Contains(stdout, string(b)) {
			t.Errorf("%s: %v, or not what was printed", f, err)
		}
	}
	t.Setenv("JOB_COMPLETION_INDEX", "x")
	for _, bad := range [][]string{
		{"--json"},
		{"--plan", "--status"},
		{"--submit"},
		{"--partition", "cpu"},
		{"--shard", "2/2"},
		{"--shard", "1"},
		{"--stage", "9"},
		{"--stage", "pretrain-nothing"},
		{"--stage", "array"},
		{"--stage", "1", "--claim-timeout", "0s"},
		{"--slurm", "--time", "4h"},
	} {
		if code, _, stderr := call(bad...); code != exitUsage {
			t.Errorf("%q: exit %d, want %d\n%s", bad, code, exitUsage, stderr)
		}
	}
}
