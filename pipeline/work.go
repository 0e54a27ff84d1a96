package pipeline

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/patchwise-ml/patchwise/pipeline/claim"
)

// DefaultClaimTimeout is how old a stage's claim heartbeat must be before
// another worker takes the stage over (WorkerConfig.ClaimTimeout).
const DefaultClaimTimeout = 2 * time.Minute

// Errors of Work.
var (
	// ErrNotReady: the stage's inputs did not finish within the wait.
	ErrNotReady = errors.New("the inputs have not finished")
	// ErrInputFailed: an input stage failed; the stage cannot run.
	ErrInputFailed = errors.New("an input stage failed")
)

// WorkerConfig selects what one worker of a shared run directory does.
// Set Stage, or Shards.
type WorkerConfig struct {
	// Stage is the one stage to carry out: its index in the plan
	// (PlanRun) or its ID.
	Stage string
	// Shard and Shards: the worker carries out the stages whose index
	// is Shard modulo Shards, in order, then any other stage that is
	// ready and unclaimed, until every stage has finished. 0 ≤ Shard <
	// Shards.
	Shard, Shards int
	// Identity names the worker in its claims; default claim.Self("").
	Identity claim.Identity
	// ClaimTimeout is the heartbeat age past which a claim is stale and
	// its stage is taken over; default DefaultClaimTimeout. The worker
	// refreshes its own claims' heartbeat every quarter of it. Every
	// worker of a run should use the same.
	ClaimTimeout time.Duration
	// Wait is how long the worker waits for a stage's inputs, or for
	// stages that other workers hold, before it gives up with
	// ErrNotReady; 0 means it does not wait.
	Wait time.Duration
}

func (w WorkerConfig) heartbeat() time.Duration { return w.ClaimTimeout / 4 }

// poll is how often a waiting worker looks again.
func (w WorkerConfig) poll() time.Duration {
	return min(max(w.ClaimTimeout/8, 10*time.Millisecond), 5*time.Second)
}

// ResolveStage returns the index of the stage named by s, an index or
// an ID.
func (p *Plan) ResolveStage(s string) (int, error) {
	if k, err := strconv.Atoi(s); err == nil {
		if k < 0 || k >= len(p.Stages) {
			return 0, fmt.Errorf("stage %d: the plan has stages 0 to %d", k, len(p.Stages)-1)
		}
		return k, nil
	}
	if st := p.Stage(s); st != nil {
		return st.Index, nil
	}
	ids := make([]string, len(p.Stages))
	for i, st := range p.Stages {
		ids[i] = st.ID
	}
	return 0, fmt.Errorf("no stage %q in the plan (%s)", s, strings.Join(ids, ", "))
}

// Work carries out stages of the run cfg in the run directory cfg.Out as
// one of several workers, on this machine or others sharing the directory
// on a shared filesystem: with w.Stage one stage, with w.Shards a share of
// them and then whatever is left. A stage is claimed before it runs
// (package claim, files in cfg.Out/claims): one worker carries it out,
// a finished stage is never carried out again, and a stage whose worker
// died (its heartbeat older than w.ClaimTimeout) is taken over; an
// interrupted pretraining resumes from its checkpoint. A stage waits up to
// w.Wait for the stages it needs; a failed stage's error goes into its
// err file. The report stage writes report.json, byte for byte the one
// Run writes for cfg. Each claim, finish, failure and wait is logged
// (Logger).
//
// It returns nil when the stages it was given have finished, an error
// wrapping ErrNotReady when it waited w.Wait in vain, one wrapping
// ErrInputFailed when a needed stage failed, the stage's error when it
// failed, and ctx's error when ctx is cancelled (after saving a
// checkpoint of a pretraining in progress and releasing its claim).
func Work(ctx context.Context, cfg RunConfig, w WorkerConfig, p Progress) error {
	if p == nil {
		p = NoProgress{}
	}
	cfg = cfg.withSeeds()
	plan, err := PlanRun(cfg)
	if err != nil {
		return err
	}
	if w.ClaimTimeout == 0 {
		w.ClaimTimeout = DefaultClaimTimeout
	}
	if w.ClaimTimeout < 0 || w.Wait < 0 {
		return fmt.Errorf("pipeline: work: negative claim timeout %v or wait %v", w.ClaimTimeout, w.Wait)
	}
	if w.Identity == (claim.Identity{}) {
		w.Identity = claim.Self("")
	}
	var order []int
	switch {
	case w.Stage != "" && w.Shards != 0:
		return errors.New("pipeline: work: give a stage or a shard, not both")
	case w.Stage != "":
		k, err := plan.ResolveStage(w.Stage)
		if err != nil {
			return fmt.Errorf("pipeline: work: %w", err)
		}
		order = []int{k}
	case w.Shards > 0 && w.Shard >= 0 && w.Shard < w.Shards:
		// Its own share first, then the others'.
		for k := range plan.Stages {
			if k%w.Shards == w.Shard {
				order = append(order, k)
			}
		}
		for k := range plan.Stages {
			if k%w.Shards != w.Shard {
				order = append(order, k)
			}
		}
	default:
		return fmt.Errorf("pipeline: work: shard %d/%d: want 0 ≤ i < n", w.Shard, w.Shards)
	}
	r := newRunner(cfg, p)
	r.stageOnly = true
	if err := r.claim(); err != nil {
		return err
	}
	wk := &worker{cfg: cfg, w: w, p: p, plan: plan, order: order, single: w.Stage != "",
		claims: claim.Dir{Path: filepath.Join(cfg.Out, ClaimDir), Timeout: w.ClaimTimeout},
		failed: map[string]error{}, said: map[string]string{}}
	return wk.loop(ctx)
}

type worker struct {
	cfg    RunConfig
	w      WorkerConfig
	p      Progress
	plan   *Plan
	order  []int
	single bool
	claims claim.Dir
	// failed holds the stages that failed in this worker: it does not
	// try them again.
	failed map[string]error
	// said is the last waiting message logged per stage.
	said map[string]string
}

func (wk *worker) log(format string, args ...any) {
	if l, ok := wk.p.(Logger); ok {
		l.Log(fmt.Sprintf(format, args...))
	}
}

func (wk *worker) name(s Stage) string {
	return fmt.Sprintf("stage %d/%d %s", s.Index, len(wk.plan.Stages), s.ID)
}

// holder describes a claim's owner.
func holder(st claim.State) string {
	return fmt.Sprintf("%v, heartbeat %s ago", st.Claim.Identity, st.Age.Round(100*time.Millisecond))
}

func (wk *worker) loop(ctx context.Context) error {
	deadline := time.Now().Add(wk.w.Wait)
	for first := true; ; first = false {
		ran, status, err := wk.pass(ctx, first)
		if err != nil {
			return err
		}
		if status.left == 0 {
			if !wk.single {
				wk.log("every stage has finished")
			}
			return nil
		}
		if ran {
			continue
		}
		if len(status.blocked) > 0 && (wk.single || !status.live) {
			return fmt.Errorf("pipeline: work: %w", errors.Join(status.blocked...))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pipeline: work: %w after waiting %v: %s", ErrNotReady, wk.w.Wait, strings.Join(status.waiting, "; "))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wk.w.poll()):
		}
	}
}

// passStatus is what a pass over the worker's stages found.
type passStatus struct {
	left    int      // stages not finished
	live    bool     // some are held by live claims
	waiting []string // why stages wait
	blocked []error  // stages that cannot run: they or their inputs failed
}

// pass looks at the worker's stages in order and carries out the first
// that is ready and unclaimed. ran reports whether it did; first, whether
// this is the worker's first look.
func (wk *worker) pass(ctx context.Context, first bool) (ran bool, ps passStatus, err error) {
	for _, k := range wk.order {
		s := wk.plan.Stages[k]
		st, err := wk.claims.State(s.ID)
		if err != nil {
			return false, ps, err
		}
		if st.Done != nil {
			if wk.single && first {
				wk.log("%s: finished earlier (by %v)", wk.name(s), st.Done.Identity)
			}
			continue
		}
		ps.left++
		if err := wk.failed[s.ID]; err != nil {
			ps.blocked = append(ps.blocked, fmt.Errorf("%s failed: %w", s.ID, err))
			continue
		}
		if st.Held() {
			ps.live = true
			wk.wait(s, &ps, "claimed by "+holder(st))
			continue
		}
		why, err := wk.inputs(s)
		if err != nil {
			ps.blocked = append(ps.blocked, err)
			continue
		}
		if why != "" {
			wk.wait(s, &ps, why)
			continue
		}
		c, err := wk.claims.Claim(s.ID, wk.w.Identity)
		var held *claim.HeldError
		switch {
		case errors.Is(err, claim.ErrDone):
			ps.left--
			continue
		case errors.As(err, &held):
			ps.live = true
			wk.wait(s, &ps, "claimed by "+holder(held.State))
			continue
		case err != nil:
			return false, ps, err
		}
		if err := wk.carry(ctx, s, st, c); err != nil {
			if ctx.Err() != nil {
				return false, ps, err
			}
			if errors.Is(err, claim.ErrLost) {
				return true, ps, nil // another worker has it now
			}
			wk.failed[s.ID] = err
			if wk.single {
				return false, ps, err
			}
		}
		return true, ps, nil
	}
	return false, ps, nil
}

// wait records and logs (once per reason) why stage s waits.
func (wk *worker) wait(s Stage, ps *passStatus, why string) {
	ps.waiting = append(ps.waiting, s.ID+": "+why)
	// The heartbeat's age changes at every look: log the reason without it.
	key := why
	if i := strings.Index(key, "; heartbeat"); i >= 0 {
		key = key[:i]
	}
	if wk.said[s.ID] != key {
		wk.said[s.ID] = key
		if wk.single || wk.w.Wait > 0 {
			wk.log("%s: waiting: %s", wk.name(s), why)
		}
	}
}

// inputs says why stage s cannot start yet ("" when it can), or returns
// an error wrapping ErrInputFailed when one of its inputs failed and
// will not be tried again by this worker.
func (wk *worker) inputs(s Stage) (string, error) {
	var waits []string
	for _, id := range s.Needs {
		st, err := wk.claims.State(id)
		if err != nil {
			return "", err
		}
		switch {
		case st.Done != nil:
			continue
		case wk.failed[id] != nil:
			return "", fmt.Errorf("%s: %w: %s: %w", s.ID, ErrInputFailed, id, wk.failed[id])
		case wk.single && st.Failed():
			return "", fmt.Errorf("%s: %w: %s failed on %s (pid %d, %s): %s; run it again (--stage %s)",
				s.ID, ErrInputFailed, id, st.Failure.Host, st.Failure.PID, st.Failure.Time.Format(time.RFC3339), st.Failure.Error, id)
		case st.Held():
			waits = append(waits, id+" (claimed by "+holder(st)+")")
		default:
			waits = append(waits, id+" ("+st.Status()+")")
		}
	}
	if len(waits) == 0 {
		return "", nil
	}
	return "needs " + strings.Join(waits, ", "), nil
}

// carry carries out stage s under the claim c; before is the stage's
// state when it was found unclaimed.
func (wk *worker) carry(ctx context.Context, s Stage, before claim.State, c *claim.Claim) error {
	rec := c.Record()
	how := ""
	switch {
	case before.Stale:
		how = "; took it over from " + holder(before)
	case before.Claim != nil && before.Claim.Released == claim.ReleasedInterrupted:
		how = fmt.Sprintf("; claim %d was interrupted", before.Claim.Generation)
	case before.Failed():
		how = fmt.Sprintf("; it failed before: %s", before.Failure.Error)
	}
	wk.log("%s: claimed by %v, claim %d%s", wk.name(s), rec.Identity, rec.Generation, how)
	t0 := time.Now()
	kctx, stop := c.Keep(ctx, wk.w.heartbeat())
	err := wk.do(kctx, s)
	lost := context.Cause(kctx)
	stop()
	switch {
	case err == nil:
		if err := c.Finish(); err != nil {
			return err
		}
		wk.log("%s: finished in %.1f s", wk.name(s), time.Since(t0).Seconds())
		return nil
	case ctx.Err() != nil:
		if rerr := c.Release(claim.ReleasedInterrupted); rerr != nil {
			err = errors.Join(err, rerr)
		}
		wk.log("%s: interrupted; claim released, a pretraining resumes from its last checkpoint", wk.name(s))
		return err
	case errors.Is(lost, claim.ErrLost):
		wk.log("%s: stopped: %v", wk.name(s), lost)
		return lost
	}
	if ferr := c.Fail(err); ferr != nil {
		err = errors.Join(err, ferr)
	}
	wk.log("%s: failed: %v", wk.name(s), err)
	return err
}

// do carries out stage s.
func (wk *worker) do(ctx context.Context, s Stage) error {
	r := newRunner(wk.cfg, wk.p)
	r.stageOnly = true
	if s.Kind == StageReport {
		// The report stage is a whole run whose other stages have
		// finished: it writes the report as Run does, and run.json.
		r.stageOnly = false
		if err := r.claim(); err != nil {
			return err
		}
		_, err := r.run(ctx)
		r.man.Seconds = round3(time.Since(r.start).Seconds())
		r.man.Finished = err == nil
		if werr := r.writeManifest(); err == nil {
			err = werr
		}
		return err
	}
	if err := r.openDatasets(ctx); err != nil {
		return err
	}
	if s.Kind == StageIngest {
		return nil
	}
	if err := r.chooseLR(ctx, s.Pretext); err != nil {
		return err
	}
	var err error
	switch s.Kind {
	case StageSweep:
		return nil
	case StagePretrain:
		if why := r.untrainable(s.Pretext); why != "" {
			r.log("%s seed %d: %s", s.Pretext, s.Seed, why)
			return nil
		}
		cfg := r.pretrainConfig(s.Pretext)
		cfg.Seed = s.Seed
		_, err = r.pretrain(ctx, r.datasets[0], cfg, fmt.Sprintf("%s seed %d", s.Pretext, s.Seed),
			fmt.Sprintf("%s-seed%d", s.Pretext, s.Seed), &ReportEntry{})
	case StageProbe:
		_, err = r.entry(ctx, s.Pretext, s.Seed)
	default:
		return fmt.Errorf("pipeline: work: stage %s of unknown kind %q", s.ID, s.Kind)
	}
	if errors.Is(err, ErrNonFinite) && ctx.Err() == nil {
		// A diverged pretraining is a result: the report says so.
		r.log("%v", err)
		return nil
	}
	return err
}

// StageStatus is a stage of a plan with its state in the claim directory.
type StageStatus struct {
	Stage
	// Status is "pending", "claimed", "stale" (claimed, its owner
	// silent past the timeout), "interrupted", "failed" or "finished".
	Status  string         `json:"status"`
	Claim   *claim.Record  `json:"claim,omitempty"`
	Done    *claim.Done    `json:"done,omitempty"`
	Failure *claim.Failure `json:"failure,omitempty"`
	// HeartbeatAge is the age of the claim's heartbeat, in seconds.
	HeartbeatAge float64 `json:"heartbeat_age_s,omitempty"`
}

// RunStatus returns the plan of the run cfg with each stage's state in
// its run directory, a claim being stale after timeout (0:
// DefaultClaimTimeout). It writes nothing.
func RunStatus(cfg RunConfig, timeout time.Duration) (*Plan, []StageStatus, error) {
	plan, err := PlanRun(cfg)
	if err != nil {
		return nil, nil, err
	}
	if timeout == 0 {
		timeout = DefaultClaimTimeout
	}
	d := claim.Dir{Path: filepath.Join(cfg.Out, ClaimDir), Timeout: timeout}
	out := make([]StageStatus, len(plan.Stages))
	for i, s := range plan.Stages {
		st, err := d.State(s.ID)
		if err != nil {
			return nil, nil, err
		}
		out[i] = StageStatus{Stage: s, Status: st.Status(), Claim: st.Claim, Done: st.Done, Failure: st.Failure}
		if st.Claim != nil && st.Done == nil {
			out[i].HeartbeatAge = round3(st.Age.Seconds())
		}
	}
	return plan, out, nil
}

// refuseClaimed refuses a whole run in a directory some of whose stages
// workers (Work) hold.
func (r *runner) refuseClaimed() error {
	d := claim.Dir{Path: filepath.Join(r.dir, ClaimDir), Timeout: DefaultClaimTimeout}
	tasks, err := d.Tasks()
	if err != nil {
		return err
	}
	var held []string
	for _, t := range tasks {
		st, err := d.State(t)
		if err != nil {
			return err
		}
		if st.Held() {
			held = append(held, t+" by "+holder(st))
		}
	}
	if len(held) > 0 {
		return fmt.Errorf("pipeline: run %q: workers hold stages of this run (%s): wait for them, or join them as a worker",
			r.dir, strings.Join(held, "; "))
	}
	return nil
}

// PrepareRun creates the run directory of cfg with its run.json, or
// checks that the one there holds cfg (ErrRunConfigChanged otherwise), as
// Run and Work do before their first stage.
func PrepareRun(cfg RunConfig) error {
	cfg = cfg.withSeeds()
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("%w:\n%w", ErrInvalidConfig, err)
	}
	r := newRunner(cfg, nil)
	r.stageOnly = true
	return r.claim()
}
