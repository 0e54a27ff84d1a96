package pipeline

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/patchwise-ml/patchwise/pipeline/checkpoint"
	"github.com/patchwise-ml/patchwise/pretext"
)

// group stands for the processes of a distributed training with
// goroutines: its members' sums are summed in rank order.
type group struct {
	n       int
	mu      sync.Mutex
	cond    *sync.Cond
	parts   [][]float64
	arrived int
	gen     int
	result  []float64
}

func newGroup(n int) *group {
	g := &group{n: n, parts: make([][]float64, n)}
	g.cond = sync.NewCond(&g.mu)
	return g
}

// member is one goroutine's comm.
type member struct {
	g    *group
	rank int
}

func (m member) Rank() int { return m.rank }
func (m member) Size() int { return m.g.n }

func (m member) SumFloat64(v []float64) error {
	g := m.g
	g.mu.Lock()
	defer g.mu.Unlock()
	gen := g.gen
	g.parts[m.rank] = append(g.parts[m.rank][:0], v...)
	g.arrived++
	if g.arrived == g.n {
		res := make([]float64, len(v))
		for _, p := range g.parts {
			if len(p) != len(v) {
				panic("group: members summed different lengths")
			}
			for i, x := range p {
				res[i] += x
			}
		}
		g.result, g.arrived = res, 0
		g.gen++
		g.cond.Broadcast()
	} else {
		for gen == g.gen {
			g.cond.Wait()
		}
	}
	copy(v, g.result)
	return nil
}

// SumFloat32 sums in float32, in rank order, as MPI sums float32 values.
func (m member) SumFloat32(v []float32) error {
	w := make([]float64, len(v))
	for i, x := range v {
		w[i] = float64(x)
	}
	// Summed in float64 then rounded: the same as float32 sums for two
	// members (one rounding), close for more.
	if err := m.SumFloat64(w); err != nil {
		return err
	}
	for i, x := range w {
		v[i] = float32(x)
	}
	return nil
}

// runRanks runs a distributed pretraining of cfg over n goroutines
// (ctxs[r], when given, is rank r's parent context) and returns rank 0's
// result and every rank's error.
func runRanks(cfg PretrainConfig, resume bool, n int, ctxs ...context.Context) (*PretrainResult, []error) {
	g := newGroup(n)
	errs := make([]error, n)
	var res *PretrainResult
	var wg sync.WaitGroup
	for r := range n {
		ctx := context.Background()
		if r < len(ctxs) && ctxs[r] != nil {
			ctx = ctxs[r]
		}
		wg.Go(func() {
			c := cfg
			if resume {
				c = PretrainConfig{Out: cfg.Out, Distributed: DistributedMPI}
			}
			rr, err := pretrain(ctx, c, resume, nil, newDist(member{g, r}))
			errs[r] = err
			if r == 0 {
				res = rr
			}
		})
	}
	wg.Wait()
	return res, errs
}

func allNil(t *testing.T, errs []error) {
	t.Helper()
	for r, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v", r, err)
		}
	}
}

func valLosses(t *testing.T, dir string) []float64 {
	t.Helper()
	rs, err := ReadMetrics(filepath.Join(dir, MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	var ls []float64
	for _, r := range rs {
		if r.IsVal() {
			ls = append(ls, *r.ValLoss)
		}
	}
	return ls
}

// closeTo reports whether a and b agree to the rounding of sums taken in
// another order (through a few steps of training).
func closeTo(a, b float64) bool { return math.Abs(a-b) <= 2e-4*(1+math.Abs(a)) }

// TestDistributedSameTrajectory checks that a training over two and four
// processes logs the losses of one process on the same global batch, at
// every step and validation, for every pretext whose loss is a mean over
// its samples and whose model draws nothing of its own.
func TestDistributedSameTrajectory(t *testing.T) {
	names := []string{"relpos", "rotation", "jigsaw", "inpaint", "ae-mirrored", "ae-tied", "supervised", "rotation/resnet18"}
	if testing.Short() {
		names = []string{"rotation", "ae-mirrored"}
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			pt, arch, _ := strings.Cut(name, "/")
			cfg := tinyConfig(t, pt)
			cfg.Steps = 8
			if arch != "" {
				// Batch norms in residual blocks and their shortcuts. Their
				// 4 and 8 channels amplify the rounding of sums taken in
				// another order about tenfold a step from step 5 on (to
				// 7e-4 by step 8), so the trajectory is compared over 6.
				cfg.Encoder = pretext.EncoderConfig{Arch: arch, Widths: []int{4, 4, 8, 8}}
				cfg.Steps = 6
			}
			if _, err := Pretrain(context.Background(), cfg, false, nil); err != nil {
				t.Fatal(err)
			}
			want, wantVal := trainLosses(t, cfg.Out), valLosses(t, cfg.Out)
			for _, n := range []int{2, 4} {
				c := cfg
				c.Out, c.Distributed = filepath.Join(t.TempDir(), "dist"), DistributedMPI
				res, errs := runRanks(c, false, n)
				allNil(t, errs)
				if res.Steps != cfg.Steps || res.ReduceS <= 0 {
					t.Errorf("%d processes: result %+v", n, res)
				}
				got, gotVal := trainLosses(t, c.Out), valLosses(t, c.Out)
				if len(got) != len(want) || len(gotVal) != len(wantVal) {
					t.Fatalf("%d processes: %d losses, %d validations; one process %d, %d", n, len(got), len(gotVal), len(want), len(wantVal))
				}
				for i := range want {
					if !closeTo(want[i], got[i]) {
						t.Errorf("%d processes: step %d: loss %v, one process %v", n, i+1, got[i], want[i])
					}
				}
				for i := range wantVal {
					if !closeTo(wantVal[i], gotVal[i]) {
						t.Errorf("%d processes: validation %d: loss %v, one process %v", n, i+1, gotVal[i], wantVal[i])
					}
				}
			}
		})
	}
}

// TestDistributedResume interrupts a two-process training by cancelling
// one process only, checks that both stopped after the same step with one
// checkpoint, then resumes it over two processes and checks the losses
// are the uninterrupted run's, exactly.
func TestDistributedResume(t *testing.T) {
	cfg := tinyConfig(t, "relpos")
	cfg.Steps, cfg.CheckpointEvery, cfg.Distributed = 20, 4, DistributedMPI
	cfg.Optimizer = OptimizerAdamW
	if _, errs := runRanks(cfg, false, 2); errs != nil {
		allNil(t, errs)
	}
	want := trainLosses(t, cfg.Out)

	cfg.Out = filepath.Join(t.TempDir(), "run2")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Rank 1's context is cancelled while rank 0's is not: rank 0 must
	// stop too, and save.
	g := newGroup(2)
	errs := make([]error, 2)
	var res *PretrainResult
	var wg sync.WaitGroup
	for r := range 2 {
		wg.Go(func() {
			pctx := context.Background()
			var p Progress
			if r == 1 {
				pctx = ctx
			} else {
				p = &cancelAfter{n: 7, cancel: cancel}
			}
			rr, err := pretrain(pctx, cfg, false, p, newDist(member{g, r}))
			errs[r] = err
			if r == 0 {
				res = rr
			}
		})
	}
	wg.Wait()
	for r, err := range errs {
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("rank %d of the interrupted run: %v", r, err)
		}
	}
	if res.Steps < 8 || res.Steps > 9 || filepath.Base(res.Checkpoint) != checkpoint.DirName(res.Steps) {
		t.Fatalf("interrupted at step %d, checkpoint %q; want step 8 or 9", res.Steps, res.Checkpoint)
	}
	// A copy is resumed by one process, as a world of one: the same
	// global batch, the same losses up to the order of the sums.
	alone := filepath.Join(t.TempDir(), "alone")
	if err := os.CopyFS(alone, os.DirFS(cfg.Out)); err != nil {
		t.Fatal(err)
	}
	res, errs = runRanks(cfg, true, 2)
	allNil(t, errs)
	if res.Steps != 20 {
		t.Errorf("resumed to step %d", res.Steps)
	}
	got := trainLosses(t, cfg.Out)
	if !slices.Equal(got, want) {
		t.Errorf("resumed losses\n%v\nuninterrupted\n%v", got, want)
	}
	c := cfg
	c.Out = alone
	if _, errs := runRanks(c, true, 1); errs != nil {
		allNil(t, errs)
	}
	got = trainLosses(t, alone)
	if len(got) != len(want) {
		t.Fatalf("resumed alone: %d losses, want %d", len(got), len(want))
	}
	for i := range want {
		if !closeTo(want[i], got[i]) {
			t.Errorf("resumed alone: step %d: loss %v, two processes %v", i+1, got[i], want[i])
		}
	}
}
