package data

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// Defaults of Order.
const (
	DefaultShuffleBuffer = 10000 // records
	DefaultInterleave    = 4     // shards read at once
)

// Order says in which order a Reader visits the records of a split. Its
// zero value is file order: the shards one after the other, the records of
// each in turn.
//
// With Shuffle, a pass is drawn from a generator seeded by Seed and Pass
// (math/rand/v2's PCG): the split's shards are put in a random order (the
// generator's Perm); the first Interleave of them are opened, and records
// arrive from the open shards in turn, one record from each (a shard that
// ends is replaced, in its turn, by the next shard of the order, or
// dropped when none is left); the first Buffer arrivals fill the shuffle
// buffer, and from then on each arrival takes the place of a buffered
// record chosen uniformly (the generator's IntN), which is emitted; when
// every record has arrived the buffer is shuffled (the generator's
// Shuffle) and emitted. The order is thus a function of the manifest's
// shard sizes, Seed, Pass, Buffer and Interleave only: a Reader computes
// where any position of a pass is without reading a record (PassOrder),
// and memory is bounded by the buffer and the open shards, not by the
// split. A split no larger than Buffer comes out as a uniformly random
// permutation.
type Order struct {
	Shuffle bool
	Seed    uint64
	// Pass numbers the passes over the split (epochs): each pass of a
	// seed has its own order.
	Pass int
	// Buffer is the shuffle buffer's size in records; default
	// DefaultShuffleBuffer. It holds Buffer records' pixels: at 32×32×3
	// the default is 31 MB, at 96×96×3 276 MB. 1 shuffles only the
	// shards' order.
	Buffer int
	// Interleave is the number of shards read at once; default
	// DefaultInterleave. Each open shard costs a zstd decoder (about 10 MB).
	Interleave int
}

// withDefaults fills in o's defaults.
func (o Order) withDefaults() Order {
	if o.Buffer == 0 {
		o.Buffer = DefaultShuffleBuffer
	}
	if o.Interleave == 0 {
		o.Interleave = DefaultInterleave
	}
	return o
}

// Validate reports every problem with o at once.
func (o Order) Validate() error {
	var errs []error
	if o.Buffer < 0 {
		errs = append(errs, fmt.Errorf("data: shuffle buffer %d: want ≥ 1, or 0 for the default %d", o.Buffer, DefaultShuffleBuffer))
	}
	if o.Interleave < 0 {
		errs = append(errs, fmt.Errorf("data: interleave %d: want ≥ 1, or 0 for the default %d", o.Interleave, DefaultInterleave))
	}
	if o.Pass < 0 {
		errs = append(errs, fmt.Errorf("data: pass %d is negative", o.Pass))
	}
	return errors.Join(errs...)
}

// recPos is a record's place: its shard (the position within the split's
// shards) and its index within the shard.
type recPos struct{ shard, rec int }

// schedule says which record arrives next from the open shards (see Order).
type schedule struct {
	counts []int    // records of each shard of the split
	queue  []int    // shards not opened yet, the next first
	slots  []recPos // the open shards, each with its next record
	turn   int      // the slot whose record arrives next
}

func newSchedule(counts, order []int, interleave int) *schedule {
	s := &schedule{counts: counts, queue: order}
	for len(s.slots) < interleave && len(s.queue) > 0 {
		s.slots = append(s.slots, recPos{s.queue[0], 0})
		s.queue = s.queue[1:]
	}
	return s
}

// next returns the next record to arrive, and false when every record has.
func (s *schedule) next() (recPos, bool) {
	if len(s.slots) == 0 {
		return recPos{}, false
	}
	t := s.turn
	sl := &s.slots[t]
	p := *sl
	sl.rec++
	switch {
	case sl.rec < s.counts[sl.shard]:
		t++
	case len(s.queue) > 0:
		*sl = recPos{s.queue[0], 0}
		s.queue = s.queue[1:]
		t++
	default:
		s.slots = slices.Delete(s.slots, t, t+1) // the next slot moves into t
	}
	if len(s.slots) > 0 {
		s.turn = t % len(s.slots)
	}
	return p, true
}

// shuffler is the shuffle buffer of Order, over records (a Reader) or
// their places (a Reader's replay, PassOrder): both make the same draws.
type shuffler[T any] struct {
	rng   *mrand.Rand // nil: no buffer, records leave as they arrive
	cap   int
	buf   []T
	drain int // -1 while records arrive; then the index in buf of the next to leave
}

// next returns the next record to leave, taking arrivals from arrive
// (which returns false when none are left); false when the pass is over.
func (s *shuffler[T]) next(arrive func() (T, bool, error)) (T, bool, error) {
	var zero T
	if s.drain < 0 {
		for {
			x, ok, err := arrive()
			if err != nil {
				return zero, false, err
			}
			if !ok {
				break
			}
			if s.rng == nil {
				return x, true, nil
			}
			if len(s.buf) < s.cap {
				s.buf = append(s.buf, x)
				continue
			}
			k := s.rng.IntN(len(s.buf))
			out := s.buf[k]
			s.buf[k] = x
			return out, true, nil
		}
		s.drain = 0
		if s.rng != nil {
			s.rng.Shuffle(len(s.buf), func(i, j int) { s.buf[i], s.buf[j] = s.buf[j], s.buf[i] })
		}
	}
	if s.drain < len(s.buf) {
		x := s.buf[s.drain]
		s.buf[s.drain] = zero
		s.drain++
		return x, true, nil
	}
	return zero, false, nil
}

// plan returns the schedule and the (empty) shuffler of a pass over split
// in order o, which has its defaults.
func (d *Dataset) plan(split string, o Order) (*schedule, *shuffler[recPos]) {
	shards := d.shards[split]
	counts := make([]int, len(shards))
	order := make([]int, len(shards))
	for i, si := range shards {
		counts[i], order[i] = si.Records, i
	}
	sh := &shuffler[recPos]{drain: -1}
	interleave := 1
	if o.Shuffle {
		// "pwstrem" and the pass: every pass of a seed its own stream.
		sh.rng = mrand.New(mrand.NewPCG(o.Seed, 0x7077737472656d^uint64(o.Pass)*0x9e3779b97f4a7c15))
		sh.cap = o.Buffer
		order = sh.rng.Perm(len(shards))
		interleave = o.Interleave
	}
	return newSchedule(counts, order, interleave), sh
}

// PassOrder returns the indices within split of the records of a pass in
// order o, in the order a Reader emits them, computed from the manifest
// alone (no shard is read). It holds one int per record of the split.
func (d *Dataset) PassOrder(split string, o Order) ([]int, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	sched, sh := d.plan(split, o.withDefaults())
	shards := d.shards[split]
	out := make([]int, 0, d.man.Splits[split])
	arrive := func() (recPos, bool, error) { p, ok := sched.next(); return p, ok, nil }
	for {
		p, ok, _ := sh.next(arrive)
		if !ok {
			return out, nil
		}
		out = append(out, shards[p.shard].FirstIndex+p.rec)
	}
}

// Reader reads the records of one pass over a split in an Order, a shard
// at a time (Interleave at a time when shuffled), checking each shard as
// it goes: the CRC-32C of every record as it is read, the SHA-256 of the
// shard's file against the manifest once its last record is read (so a
// damaged shard file is reported when its end is reached, after the
// records before the damage, each CRC-checked, have been returned). Its
// memory is the shuffle buffer's records and the open shards' decoders,
// whatever the split's size. A Reader is used from one goroutine.
type Reader struct {
	d      *Dataset
	ctx    context.Context
	shards []ShardInfo
	sched  *schedule
	shuf   *shuffler[streamed]
	open   map[int]*shardStream
	replay *shuffler[recPos] // the buffer's places, until the first Next loads them
	left   int               // records still to emit
	err    error
}

// streamed is a record with its index within the split.
type streamed struct {
	rec   Record
	index int
}

// NewReader returns a Reader of the records of split in order o, starting
// at position start of the pass (0 for the whole pass; a resumed pass
// gives the position it stopped at, in [0, Len(split)]). A split the
// dataset does not have gives an empty pass. ctx stops the reading: Next
// then returns its error.
//
// Starting past 0 replays the pass's schedule and shuffle buffer from the
// manifest alone (integer work, no I/O), then the first Next reads what
// the buffer holds at start: it decompresses the open shards up to their
// current record and the earlier shards that still have records in the
// buffer up to their last such record, copying out only those records.
// With the default buffer that is the open shards plus, typically, the
// few shards before them (a record stays in the buffer for Buffer
// arrivals on average); never the whole pass.
func (d *Dataset) NewReader(ctx context.Context, split string, o Order, start int) (*Reader, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	n := d.man.Splits[split]
	if start < 0 || start > n {
		return nil, fmt.Errorf("data: dataset %q: split %q: start %d outside [0, %d]", d.dir, split, start, n)
	}
	sched, sim := d.plan(split, o.withDefaults())
	arrive := func() (recPos, bool, error) { p, ok := sched.next(); return p, ok, nil }
	for range start {
		sim.next(arrive)
	}
	r := &Reader{d: d, ctx: ctx, shards: d.shards[split], sched: sched, open: map[int]*shardStream{}, left: n - start,
		shuf: &shuffler[streamed]{rng: sim.rng, cap: sim.cap, buf: make([]streamed, len(sim.buf)), drain: sim.drain}}
	if start > 0 {
		r.replay = sim
	}
	return r, nil
}

// Len returns the number of records the Reader has still to return.
func (r *Reader) Len() int { return r.left }

// Next returns the next record of the pass and its index within the
// split, or io.EOF after the last. Errors: a damaged shard (a
// *CorruptError naming it), an I/O error, ctx's error. Once Next has
// returned an error it returns the same error on every later call.
func (r *Reader) Next() (Record, int, error) {
	if r.err == nil {
		r.err = r.ctx.Err()
	}
	if r.err == nil && r.replay != nil {
		r.err = r.restore()
		r.replay = nil
	}
	if r.err != nil {
		return Record{}, 0, r.err
	}
	x, ok, err := r.shuf.next(r.arrive)
	switch {
	case err != nil:
		r.err = err
	case !ok:
		r.err = io.EOF
	}
	if r.err != nil {
		r.Close()
		return Record{}, 0, r.err
	}
	r.left--
	return x.rec, x.index, nil
}

// arrive reads the next record of the schedule.
func (r *Reader) arrive() (streamed, bool, error) {
	p, ok := r.sched.next()
	if !ok {
		return streamed{}, false, nil
	}
	st := r.open[p.shard]
	if st == nil {
		if p.rec != 0 {
			panic(fmt.Sprintf("data: Reader: shard %d is not open at record %d", p.shard, p.rec))
		}
		var err error
		if st, err = r.d.openShard(r.shards[p.shard]); err != nil {
			return streamed{}, false, err
		}
		r.open[p.shard] = st
	}
	rec, err := st.read(true)
	if err != nil {
		return streamed{}, false, err
	}
	if st.p.read == st.p.want {
		delete(r.open, p.shard)
		if err := st.finish(); err != nil {
			return streamed{}, false, err
		}
	}
	return streamed{rec, r.shards[p.shard].FirstIndex + p.rec}, true, nil
}

// restore reads the records the replayed shuffle buffer holds, and leaves
// each open shard of the schedule at its next record.
func (r *Reader) restore() error {
	type want struct{ rec, slot int }
	need := map[int][]want{} // shard → records to load into the buffer
	for k := max(r.replay.drain, 0); k < len(r.replay.buf); k++ {
		p := r.replay.buf[k]
		need[p.shard] = append(need[p.shard], want{p.rec, k})
	}
	upto := map[int]int{} // shard → records to read from its start
	for s, ws := range need {
		slices.SortFunc(ws, func(a, b want) int { return a.rec - b.rec })
		upto[s] = ws[len(ws)-1].rec + 1
	}
	open := map[int]bool{}
	for _, sl := range r.sched.slots {
		if sl.rec > 0 {
			open[sl.shard] = true
			upto[sl.shard] = sl.rec
		}
	}
	for _, s := range slices.Sorted(func(yield func(int) bool) {
		for s := range upto {
			if !yield(s) {
				return
			}
		}
	}) {
		st, err := r.d.openShard(r.shards[s])
		if err != nil {
			return err
		}
		ws := need[s]
		for j := range upto[s] {
			if j%256 == 255 {
				if err := r.ctx.Err(); err != nil {
					st.close()
					return err
				}
			}
			keep := len(ws) > 0 && ws[0].rec == j
			rec, err := st.read(keep)
			if err != nil {
				st.close()
				return err
			}
			if keep {
				r.shuf.buf[ws[0].slot] = streamed{rec, r.shards[s].FirstIndex + j}
				ws = ws[1:]
			}
		}
		if open[s] {
			r.open[s] = st
		} else {
			st.close() // not read to its end: its SHA-256 is checked on a later pass
		}
	}
	return nil
}

// errClosed is Next's error after Close.
var errClosed = errors.New("data: Reader used after Close")

// Close releases the open shards; Next then returns an error. It may be
// called more than once.
func (r *Reader) Close() {
	if r.err == nil {
		r.err = errClosed
	}
	for s, st := range r.open {
		st.close()
		delete(r.open, s)
	}
}

// decoders holds idle streaming zstd decoders: a decoder's history
// buffer is about 9 MB for the shards' 8 MB window, and a pass opens a
// decoder for every shard, so reusing them keeps the allocations, and the
// heap's growth between collections, from scaling with the passes' shards.
var decoders sync.Pool

// newDecoder returns a decoder of r, reused or new.
func newDecoder(r io.Reader) (*zstd.Decoder, error) {
	if zr, ok := decoders.Get().(*zstd.Decoder); ok {
		if err := zr.Reset(r); err == nil {
			return zr, nil
		}
		zr.Close()
	}
	return zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(64<<20), zstd.WithDecoderLowmem(true))
}

// shardStream reads one shard file record by record, hashing its
// compressed bytes on the way.
type shardStream struct {
	d   *Dataset
	si  ShardInfo
	f   *os.File
	sum hash.Hash
	src io.Reader // f through sum
	zr  *zstd.Decoder
	p   recordParser
}

// openShard opens the shard si and reads its header.
func (d *Dataset) openShard(si ShardInfo) (*shardStream, error) {
	f, err := os.Open(filepath.Join(d.dir, si.File))
	if err != nil {
		return nil, &CorruptError{Dir: d.dir, Shard: si.File, Record: -1, Msg: "cannot open", Err: err}
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("data: dataset %q: shard %q: %w", d.dir, si.File, err)
	}
	if fi.Size() > maxShardFile {
		f.Close()
		return nil, &CorruptError{Dir: d.dir, Shard: si.File, Record: -1,
			Msg: fmt.Sprintf("file of %d bytes: shard files are at most %d", fi.Size(), maxShardFile)}
	}
	s := &shardStream{d: d, si: si, f: f, sum: sha256.New()}
	s.src = io.TeeReader(bufio.NewReaderSize(f, 1<<16), s.sum)
	if s.zr, err = newDecoder(s.src); err != nil {
		f.Close()
		return nil, &CorruptError{Dir: d.dir, Shard: si.File, Record: -1, Msg: "corrupt zstd stream", Err: err}
	}
	s.p = recordParser{br: bufio.NewReaderSize(zstdReader{s.zr}, 1<<16), g: d.geom, want: si.Records}
	if err := s.p.header(); err != nil {
		err = s.wrap(err)
		s.close()
		return nil, err
	}
	return s, nil
}

// wrap names the dataset and shard in a *CorruptError from the parser.
// When the shard's file no longer has the manifest's SHA-256 (the rest of
// the file is hashed to tell), the error says so, as Verify's does, with
// the first damaged record where the parser found one.
func (s *shardStream) wrap(err error) error {
	var ce *CorruptError
	if !errors.As(err, &ce) {
		return err
	}
	ce.Dir, ce.Shard = s.d.dir, s.si.File
	if s.f == nil {
		return err
	}
	if _, cerr := io.Copy(io.Discard, s.src); cerr != nil {
		return err
	}
	got := hex.EncodeToString(s.sum.Sum(nil))
	if got == s.si.SHA256 {
		return err
	}
	out := &CorruptError{Dir: s.d.dir, Shard: s.si.File, Record: -1,
		Msg: fmt.Sprintf("SHA-256 mismatch: shard file changed since ingest (manifest %.12s…, file %.12s…)", s.si.SHA256, got)}
	if ce.Record >= 0 {
		out.Record = ce.Record
		out.Msg += "; first damaged record: " + ce.Msg
	}
	return out
}

// read returns the next record (without pixels or origin unless keep).
func (s *shardStream) read(keep bool) (Record, error) {
	rec, err := s.p.next(keep)
	if err != nil {
		err = s.wrap(err)
		s.close()
		return Record{}, err
	}
	return rec, nil
}

// finish checks that the shard ends after its last record and that its
// file's SHA-256 is the manifest's, and closes it.
func (s *shardStream) finish() error {
	defer s.close()
	if err := s.p.end(); err != nil {
		return s.wrap(err)
	}
	if _, err := io.Copy(io.Discard, s.src); err != nil {
		return fmt.Errorf("data: dataset %q: shard %q: %w", s.d.dir, s.si.File, err)
	}
	if got := hex.EncodeToString(s.sum.Sum(nil)); got != s.si.SHA256 {
		return &CorruptError{Dir: s.d.dir, Shard: s.si.File, Record: -1,
			Msg: fmt.Sprintf("SHA-256 mismatch: shard file changed since ingest (manifest %.12s…, file %.12s…)", s.si.SHA256, got)}
	}
	return nil
}

func (s *shardStream) close() {
	if s.zr != nil {
		if s.zr.Reset(nil) == nil {
			decoders.Put(s.zr)
		} else {
			s.zr.Close()
		}
		s.zr = nil
	}
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
}
