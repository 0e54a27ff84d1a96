package pipeline

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math"

	"github.com/patchwise-ml/patchwise/internal/mpi"
	"github.com/patchwise-ml/patchwise/nn"
	"github.com/patchwise-ml/patchwise/pretext"
)

// DistributedMPI is the PretrainConfig.Distributed setting of a
// data-parallel pretraining over the processes that mpirun or srun
// started, with Open MPI (see Pretrain).
const DistributedMPI = "mpi"

// gradBucket is the number of float32 gradient values summed by one
// all-reduce: parameters are packed into buckets of about this size in
// the order backward passes produce their gradients (last layer first).
const gradBucket = 1 << 20

// rankSeedMix separates the model's draws of each process's slice.
const rankSeedMix = 0x9e3779b97f4a7c15

// comm is what a data-parallel pretraining needs of its communicator:
// internal/mpi's world, or in tests goroutines that stand for processes.
// Every process makes the same calls in the same order.
type comm interface {
	Rank() int
	Size() int
	SumFloat32(v []float32) error
	SumFloat64(v []float64) error
}

// MPIWorld initialises MPI (once per process) for a pretraining with
// Distributed set to DistributedMPI and returns this process's rank and
// the number of processes. A command calls it first to know whether it
// is rank 0 (which owns the training directory and reports), and ends the
// world with AbortMPI when Pretrain fails on any process, or with
// FinalizeMPI when it returns nil or an interruption.
func MPIWorld() (rank, size int, err error) {
	w, err := mpi.Init()
	if err != nil {
		return 0, 0, fmt.Errorf("pipeline: distributed %q: %w", DistributedMPI, err)
	}
	return w.Rank(), w.Size(), nil
}

// AbortMPI ends every process of the MPI world with exit code code
// (MPI_Abort), so that none waits forever for a process that failed. It
// does not return.
func AbortMPI(code int) {
	if w, err := mpi.Init(); err == nil {
		w.Abort(code)
	}
	panic(fmt.Sprintf("pipeline: AbortMPI(%d) without an MPI world", code))
}

// FinalizeMPI shuts MPI down after the last collective call of every
// process.
func FinalizeMPI() error {
	w, err := mpi.Init()
	if err != nil {
		return err
	}
	return w.Finalize()
}

// MPIStatus says whether Open MPI's library can be opened: its path and
// the MPI version it implements, or why not.
func MPIStatus() string {
	path, version, err := mpi.Probe()
	if err != nil {
		return "not available (" + err.Error() + ")"
	}
	return fmt.Sprintf("%s (MPI %s)", path, version)
}

// dist is a process's share of a data-parallel pretraining: its rank
// among size processes, each with the slice [rank·B/size, (rank+1)·B/size)
// of every global batch of B samples.
type dist struct {
	c          comm
	rank, size int
	buckets    [][]*nn.Param // the gradients summed by each all-reduce
	buf        []float32
	// Time spent in all-reduces of gradients and step statistics, for
	// the measurements of PretrainResult.
	reduceS float64
}

func newDist(c comm) *dist { return &dist{c: c, rank: c.Rank(), size: c.Size()} }

// lead reports whether this process is rank 0, which owns the training
// directory.
func (d *dist) lead() bool { return d == nil || d.rank == 0 }

// First implements nn.Reducer.
func (d *dist) First() bool { return d.rank == 0 }

// Sum implements nn.Reducer for the synchronised batch norms. A failed
// all-reduce panics: the layer cannot return an error, and the command
// ends the world on a panic.
func (d *dist) Sum(v []float64) {
	if err := d.c.SumFloat64(v); err != nil {
		panic(fmt.Errorf("pipeline: synchronised batch norm: %w", err))
	}
}

// bucket packs the parameters into gradient buckets, last first.
func (d *dist) bucket(ps []*nn.Param) {
	d.buckets = nil
	var cur []*nn.Param
	size := 0
	for i := len(ps) - 1; i >= 0; i-- {
		p := ps[i]
		if p.Grad == nil {
			continue
		}
		if size > 0 && size+p.Grad.Len() > gradBucket {
			d.buckets, cur, size = append(d.buckets, cur), nil, 0
		}
		cur = append(cur, p)
		size += p.Grad.Len()
	}
	if len(cur) > 0 {
		d.buckets = append(d.buckets, cur)
	}
}

// averageGrads replaces every gradient by its mean over the processes,
// bucket by bucket.
func (d *dist) averageGrads() error {
	scale := float32(1 / float64(d.size))
	for _, b := range d.buckets {
		d.buf = d.buf[:0]
		for _, p := range b {
			d.buf = append(d.buf, p.Grad.Data...)
		}
		if err := d.c.SumFloat32(d.buf); err != nil {
			return fmt.Errorf("pipeline: pretrain: gradients: %w", err)
		}
		off := 0
		for _, p := range b {
			g := p.Grad.Data
			for i, v := range d.buf[off : off+len(g)] {
				g[i] = v * scale
			}
			off += len(g)
		}
	}
	return nil
}

// reduceMetrics returns the global batch's metrics from each process's
// m over its n samples — the loss and every value of keys weighted by
// the samples — and whether any process asked to stop (stop).
func (d *dist) reduceMetrics(m pretext.Metrics, n int, keys []string, stop bool) (pretext.Metrics, int, bool, error) {
	v := make([]float64, 3+2*len(keys))
	v[0], v[1] = m.Loss*float64(n), float64(n)
	if stop {
		v[2] = 1
	}
	for i, k := range keys {
		if x, ok := m.Values[k]; ok {
			v[3+2*i], v[4+2*i] = x*float64(n), float64(n)
		}
	}
	if err := d.c.SumFloat64(v); err != nil {
		return m, n, false, fmt.Errorf("pipeline: pretrain: metrics: %w", err)
	}
	out := pretext.Metrics{Loss: v[0] / v[1]}
	for i, k := range keys {
		if v[4+2*i] > 0 {
			if out.Values == nil {
				out.Values = map[string]float64{}
			}
			out.Values[k] = v[3+2*i] / v[4+2*i]
		}
	}
	return out, int(v[1]), v[2] > 0, nil
}

// metricKeys returns the keys of spec's metrics.
func metricKeys(spec pretext.Spec) []string {
	keys := make([]string, len(spec.Metrics))
	for i, m := range spec.Metrics {
		keys[i] = m.Key
	}
	return keys
}

// broadcast gives every process rank 0's values of ps (the others' are
// replaced): an all-reduce to which the others add zeros.
func (d *dist) broadcast(ps []*nn.Param) error {
	for _, p := range ps {
		if d.rank != 0 {
			clear(p.Value.Data)
		}
		if err := d.c.SumFloat32(p.Value.Data); err != nil {
			return fmt.Errorf("pipeline: pretrain: %s from rank 0: %w", p.Name, err)
		}
	}
	return nil
}

// broadcastFloats gives every process rank 0's v.
func (d *dist) broadcastFloats(v []float64) error {
	if d.rank != 0 {
		clear(v)
	}
	return d.c.SumFloat64(v)
}

// broadcastBytes returns rank 0's b on every process (b is ignored
// elsewhere).
func (d *dist) broadcastBytes(b []byte) ([]byte, error) {
	n := []float64{float64(len(b))}
	if err := d.broadcastFloats(n); err != nil {
		return nil, err
	}
	v := make([]float64, int(n[0]))
	if d.rank == 0 {
		for i, c := range b {
			v[i] = float64(c)
		}
	}
	if err := d.broadcastFloats(v); err != nil {
		return nil, err
	}
	out := make([]byte, len(v))
	for i, x := range v {
		out[i] = byte(x)
	}
	return out, nil
}

// errDiffer is wrapped by the error of agree.
var errDiffer = errors.New("differs between processes")

// agree checks that every process has the same fingerprint of what,
// and returns an error naming it when not.
func (d *dist) agree(what string, fp uint64) error {
	// Four 16-bit parts, their sums and sums of squares: all equal exactly
	// when Σx = P·x and Σx² = P·x² for every part (and sums this small
	// are exact in float64).
	v := make([]float64, 8)
	for i := range 4 {
		x := float64(fp >> (16 * i) & 0xffff)
		v[i], v[4+i] = x, x*x
	}
	own := append([]float64(nil), v...)
	if err := d.c.SumFloat64(v); err != nil {
		return fmt.Errorf("pipeline: pretrain: %w", err)
	}
	p := float64(d.size)
	for i := range 4 {
		if v[i] != p*own[i] || v[4+i] != p*own[4+i] {
			return fmt.Errorf("pipeline: pretrain: %s %w (rank %d of %d): every process must run the same binary with the same settings", what, errDiffer, d.rank, d.size)
		}
	}
	return nil
}

// fingerprint hashes the values of ps.
func fingerprint(ps ...[]*nn.Param) uint64 {
	h := fnv.New64a()
	var b [4]byte
	for _, list := range ps {
		for _, p := range list {
			h.Write([]byte(p.Name))
			for _, v := range p.Value.Data {
				binary.LittleEndian.PutUint32(b[:], math.Float32bits(v))
				h.Write(b[:])
			}
		}
	}
	return h.Sum64()
}

// bytesFingerprint hashes b.
func bytesFingerprint(b []byte) uint64 {
	h := fnv.New64a()
	h.Write(b)
	return h.Sum64()
}

// stopTogether returns the context a distributed training's loop runs
// in: not cancelled by ctx (a process must not stop alone, leaving the
// others waiting in an all-reduce) but by the returned cancel, once the
// processes agree to stop.
func stopTogether(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithCancel(context.WithoutCancel(ctx))
}

// shareConfig returns rank 0's saved config on every process.
func (d *dist) shareConfig(saved PretrainConfig) (PretrainConfig, error) {
	var b []byte
	if d.rank == 0 {
		var err error
		if b, err = json.Marshal(saved); err != nil {
			return saved, fmt.Errorf("pipeline: resume: %w", err)
		}
	}
	b, err := d.broadcastBytes(b)
	if err != nil {
		return saved, fmt.Errorf("pipeline: resume: the config from rank 0: %w", err)
	}
	var c PretrainConfig
	if err := json.Unmarshal(b, &c); err != nil {
		return saved, fmt.Errorf("pipeline: resume: the config from rank 0: %w", err)
	}
	return c, nil
}

// shareResume gives every process what rank 0 loaded from the latest
// checkpoint: the step, the wall time so far, the parameters, buffers and
// optimiser state.
func (d *dist) shareResume(t *trainer, st *loopState) error {
	h := []float64{float64(st.start), st.wall0, float64(st.savedAt)}
	if err := d.broadcastFloats(h); err != nil {
		return fmt.Errorf("pipeline: resume: %w", err)
	}
	st.start, st.wall0, st.savedAt = int(h[0]), h[1], int(h[2])
	for _, ps := range [][]*nn.Param{nn.Unique(t.params), t.model.Buffers(), t.opt.State()} {
		if err := d.broadcast(ps); err != nil {
			return fmt.Errorf("pipeline: resume: %w", err)
		}
	}
	return nil
}

// configFingerprint hashes the settings that must be the same on every
// process (all but Workers, which may follow each machine's cores).
func configFingerprint(c PretrainConfig) uint64 {
	c.Workers = 0
	b, _ := json.Marshal(c)
	return bytesFingerprint(b)
}
