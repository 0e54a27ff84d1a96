package pipeline

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patchwise-ml/patchwise/pipeline/claim"
)

// syncLog is a Progress that records log lines; safe for concurrent use.
type syncLog struct {
	NoProgress
	mu    sync.Mutex
	lines []string
}

func (p *syncLog) Log(line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lines = append(p.lines, line)
}

func (p *syncLog) text() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

func TestPlanRun(t *testing.T) {
	cfg := tinyRun(filepath.Join(t.TempDir(), "run"))
	cfg.Pretexts = []string{"ae-linear", "relpos", BaselineRandom}
	cfg.Seeds = []uint64{1, 2}
	cfg.Overrides = map[string]PretextOverride{"relpos": {LRSweep: []float64{0.01, 0.1}}}
	plan, err := PlanRun(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i, s := range plan.Stages {
		ids = append(ids, s.ID)
		if s.Index != i {
			t.Errorf("stage %s has index %d at %d", s.ID, s.Index, i)
		}
		for _, n := range s.Needs {
			if d := plan.Stage(n); d == nil || d.Index >= i {
				t.Errorf("stage %s needs %s, which is not before it", s.ID, n)
			}
		}
	}
	want := "ingest sweep-relpos pretrain-ae-linear-seed1 pretrain-ae-linear-seed2 pretrain-relpos-seed1 pretrain-relpos-seed2 " +
		"probe-ae-linear-seed1 probe-ae-linear-seed2 probe-relpos-seed1 probe-relpos-seed2 probe-random-seed1 probe-random-seed2 report"
	if got := strings.Join(ids, " "); got != want {
		t.Errorf("stages\n%s\nwant\n%s", got, want)
	}
	if s := plan.Stage("pretrain-relpos-seed2"); strings.Join(s.Needs, " ") != "ingest sweep-relpos" || s.Outputs[0] != "pretrain/relpos-seed2-*" {
		t.Errorf("%+v", s)
	}
	if s := plan.Stage("probe-random-seed1"); strings.Join(s.Needs, " ") != "ingest" {
		t.Errorf("%+v", s)
	}
	if s := plan.Stage(StageReport); len(s.Needs) != len(plan.Stages)-1 {
		t.Errorf("the report needs %d stages, want every other", len(s.Needs))
	}
	for _, bad := range []string{"13", "-1", "pretrain-nothing"} {
		if _, err := plan.ResolveStage(bad); err == nil {
			t.Errorf("stage %q resolved", bad)
		}
	}
	if k, err := plan.ResolveStage("probe-relpos-seed1"); err != nil || k != 8 {
		t.Errorf("resolve by ID: %d, %v", k, err)
	}
}

// TestWorkersShareRun runs a comparison as two workers in one directory
// and checks that each stage ran once and the report is a single run's.
func TestWorkersShareRun(t *testing.T) {
	if testing.Short() {
		t.Skip("short: runs a small comparison twice")
	}
	base := t.TempDir()
	if _, err := Run(context.Background(), tinyRun(filepath.Join(base, "single")), nil); err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(base, "single", ReportJSONFile))
	if err != nil {
		t.Fatal(err)
	}

	cfg := tinyRun(filepath.Join(base, "shared"))
	cfg.Pretrain.Workers = 1 // another worker count: the same report
	logs := []*syncLog{{}, {}}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := WorkerConfig{Shard: i, Shards: 2, Identity: claim.Identity{Owner: []string{"w0", "w1"}[i], Host: "h", PID: i},
				ClaimTimeout: 10 * time.Second, Wait: time.Minute}
			errs[i] = Work(context.Background(), cfg, w, logs[i])
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("%v\nlogs:\n%s\n%s", err, logs[0].text(), logs[1].text())
	}
	got, err := os.ReadFile(filepath.Join(cfg.Out, ReportJSONFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("the workers' report.json differs from a single run's")
	}
	plan, st, err := RunStatus(cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	both := logs[0].text() + "\n" + logs[1].text()
	for _, s := range st {
		if s.Status != "finished" || s.Claim.Generation != 1 {
			t.Errorf("%s: %s, claim %d", s.ID, s.Status, s.Claim.Generation)
		}
		if n := strings.Count(both, " "+s.ID+": claimed by"); n != 1 {
			t.Errorf("%s claimed %d times", s.ID, n)
		}
		for _, out := range s.Outputs {
			if !strings.Contains(out, "*") {
				if _, err := os.Stat(filepath.Join(plan.Dir, out)); err != nil {
					t.Errorf("%s: planned output: %v", s.ID, err)
				}
			}
		}
	}
	// A finished stage is not run again.
	l := &syncLog{}
	if err := Work(context.Background(), cfg, WorkerConfig{Stage: "1", Wait: 0}, l); err != nil || !strings.Contains(l.text(), "finished earlier (by w") {
		t.Errorf("stage 1 again: %v; log %q", err, l.text())
	}

	// A stage whose inputs have not finished waits, then gives up.
	other := tinyRun(filepath.Join(base, "other"))
	err = Work(context.Background(), other, WorkerConfig{Stage: "probe-ae-linear-seed1", Wait: 100 * time.Millisecond, ClaimTimeout: time.Second}, nil)
	if !errors.Is(err, ErrNotReady) || !strings.Contains(err.Error(), "needs pretrain-ae-linear-seed1 (pending)") {
		t.Errorf("stage without its inputs: %v", err)
	}
	// A failed input stops it at once.
	d := claim.Dir{Path: filepath.Join(other.Out, ClaimDir), Timeout: time.Minute}
	c, err := d.Claim("pretrain-ae-linear-seed1", claim.Identity{Owner: "x", Host: "h2", PID: 7})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Fail(errors.New("disk full")); err != nil {
		t.Fatal(err)
	}
	err = Work(context.Background(), other, WorkerConfig{Stage: "probe-ae-linear-seed1", Wait: time.Minute}, nil)
	if !errors.Is(err, ErrInputFailed) || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("stage after a failed input: %v", err)
	}
	// A whole run is refused while a worker holds a stage.
	if _, err := d.Claim("ingest", claim.Identity{Owner: "busy", Host: "h3", PID: 8}); err != nil {
		t.Fatal(err)
	}
	if _, err := Run(context.Background(), other, nil); err == nil || !strings.Contains(err.Error(), "ingest by busy") {
		t.Errorf("run beside a worker: %v", err)
	}
}

// TestWorkTakesOverStaleClaim: a worker that died holding a stage leaves
// a claim that another takes over after the timeout.
func TestWorkTakesOverStaleClaim(t *testing.T) {
	if testing.Short() {
		t.Skip("short: runs a small comparison")
	}
	cfg := tinyRun(filepath.Join(t.TempDir(), "run"))
	if err := PrepareRun(cfg); err != nil {
		t.Fatal(err)
	}
	d := claim.Dir{Path: filepath.Join(cfg.Out, ClaimDir), Timeout: time.Second}
	if _, err := d.Claim("pretrain-ae-linear-seed1", claim.Identity{Owner: "dead", Host: "h9", PID: 99}); err != nil {
		t.Fatal(err)
	}
	l := &syncLog{}
	t0 := time.Now()
	if err := Work(context.Background(), cfg, WorkerConfig{Shards: 1, ClaimTimeout: 300 * time.Millisecond, Wait: time.Minute}, l); err != nil {
		t.Fatalf("%v\n%s", err, l.text())
	}
	if !strings.Contains(l.text(), "took it over from dead (host h9, pid 99") || time.Since(t0) < 300*time.Millisecond {
		t.Errorf("log:\n%s", l.text())
	}
	st, _ := d.State("pretrain-ae-linear-seed1")
	if st.Done == nil || st.Done.Generation != 2 {
		t.Errorf("state %+v", st)
	}
}

func TestSlurmScripts(t *testing.T) {
	cfg := tinyRun("/shared/runs/exp 1")
	plan, err := PlanRun(cfg)
	if err != nil {
		t.Fatal(err)
	}
	o := SlurmOptions{Binary: "/opt/bin/patchwise", Config: "/shared/cfg's.json", Chdir: "/shared", Partition: "cpu", CPUsPerTask: 8, Time: "4:00:00"}
	sc, err := plan.Slurm(o)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"#SBATCH --array=0-3\n", "#SBATCH --requeue\n", "#SBATCH --signal=B:TERM@60\n", "#SBATCH --partition=cpu\n",
		"#SBATCH --cpus-per-task=8\n", "#SBATCH --time=4:00:00\n", "#SBATCH --output='/shared/runs/exp 1/slurm/stages-%A_%a.out'\n",
		`/opt/bin/patchwise run '/shared/cfg'\''s.json' -o '/shared/runs/exp 1' --claim-timeout 2m0s --workers 8 --stage array &`,
		`scontrol requeue "$task"`, "#    3 probe-random-seed1\n"} {
		if !strings.Contains(sc.Stages, want) {
			t.Errorf("stages script lacks %q:\n%s", want, sc.Stages)
		}
	}
	for _, want := range []string{"--stage report &", "#SBATCH --kill-on-invalid-dep=yes\n", "task=$SLURM_JOB_ID\n"} {
		if !strings.Contains(sc.Report, want) {
			t.Errorf("report script lacks %q:\n%s", want, sc.Report)
		}
	}
	if _, err := exec.LookPath("bash"); err == nil {
		for _, s := range []string{sc.Stages, sc.Report} {
			cmd := exec.Command("bash", "-n")
			cmd.Stdin = strings.NewReader(s)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("bash -n: %v: %s", err, out)
			}
		}
	}
	for _, bad := range []SlurmOptions{{Binary: "b", Config: "c", Time: "4h"}, {Binary: "b"}, {Binary: "b", Config: "c", Partition: "a b"}} {
		if _, err := plan.Slurm(bad); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
	plan.Dir = "relative"
	if _, err := plan.Slurm(o); err == nil {
		t.Error("a relative run directory: no error")
	}
}
