package data

import (
	"context"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// refOrder is Order's documented algorithm written out plainly, over the
// split's indices: the test's reference for PassOrder and Reader.
func refOrder(shards []ShardInfo, o Order) []int {
	if !o.Shuffle {
		var out []int
		for _, si := range shards {
			for j := range si.Records {
				out = append(out, si.FirstIndex+j)
			}
		}
		return out
	}
	rng := mrand.New(mrand.NewPCG(o.Seed, 0x7077737472656d^uint64(o.Pass)*0x9e3779b97f4a7c15))
	queue := rng.Perm(len(shards))
	type open struct{ shard, next int }
	var slots []open
	for len(slots) < o.Interleave && len(queue) > 0 {
		slots = append(slots, open{queue[0], 0})
		queue = queue[1:]
	}
	var arrivals []int
	for t := 0; len(slots) > 0; {
		s := &slots[t]
		arrivals = append(arrivals, shards[s.shard].FirstIndex+s.next)
		s.next++
		if s.next < shards[s.shard].Records {
			t = (t + 1) % len(slots)
			continue
		}
		if len(queue) > 0 {
			*s = open{queue[0], 0}
			queue = queue[1:]
			t = (t + 1) % len(slots)
			continue
		}
		slots = append(slots[:t], slots[t+1:]...)
		if len(slots) > 0 {
			t %= len(slots)
		}
	}
	var out, buf []int
	for _, a := range arrivals {
		if len(buf) < o.Buffer {
			buf = append(buf, a)
			continue
		}
		k := rng.IntN(len(buf))
		out = append(out, buf[k])
		buf[k] = a
	}
	rng.Shuffle(len(buf), func(i, j int) { buf[i], buf[j] = buf[j], buf[i] })
	return append(out, buf...)
}

// readAll reads a pass of split in order o from start, returning the
// records and their indices.
func readAll(t *testing.T, d *Dataset, split string, o Order, start int) ([]Record, []int) {
	t.Helper()
	r, err := d.NewReader(context.Background(), split, o, start)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var recs []Record
	var idx []int
	for {
		if want := d.Len(split) - start - len(recs); r.Len() != want {
			t.Fatalf("Len %d, want %d", r.Len(), want)
		}
		rec, i, err := r.Next()
		if err == io.EOF {
			return recs, idx
		}
		if err != nil {
			t.Fatal(err)
		}
		recs, idx = append(recs, rec), append(idx, i)
	}
}

// TestReaderOrder checks the Reader and PassOrder against the documented
// algorithm, and the records against the split's.
func TestReaderOrder(t *testing.T) {
	dsSetShardLimits(t, 16, 1<<20)
	const n = 203
	in := dsMakeInput(2, 1, 3, map[string]int{Train: n, Test: 5})
	dir := filepath.Join(t.TempDir(), "ds")
	dsWrite(t, dir, in)
	d := dsOpen(t, dir)
	shards := d.shards[Train]
	if len(shards) != 13 {
		t.Fatalf("%d shards, want 13", len(shards))
	}
	orders := []Order{
		{},
		{Shuffle: true, Seed: 1},
		{Shuffle: true, Seed: 1, Pass: 1},
		{Shuffle: true, Seed: 2, Buffer: 7, Interleave: 3},
		{Shuffle: true, Seed: 2, Buffer: 1, Interleave: 1},
		{Shuffle: true, Seed: 3, Buffer: 40, Interleave: 20},
		{Shuffle: true, Seed: 3, Buffer: 16, Interleave: 2},
	}
	seen := map[string]bool{}
	for _, o := range orders {
		t.Run(fmt.Sprintf("%+v", o), func(t *testing.T) {
			want := refOrder(shards, o.withDefaults())
			got, err := d.PassOrder(Train, o)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("PassOrder %v\nwant      %v", got, want)
			}
			if s := slices.Sorted(slices.Values(got)); len(s) != n || s[0] != 0 || s[n-1] != n-1 || len(slices.Compact(s)) != n {
				t.Fatal("not every record exactly once")
			}
			if seen[fmt.Sprint(got)] {
				t.Error("the same order as another Order")
			}
			seen[fmt.Sprint(got)] = true
			recs, idx := readAll(t, d, Train, o, 0)
			if !slices.Equal(idx, want) {
				t.Fatalf("Reader's indices %v\nwant             %v", idx, want)
			}
			for k, r := range recs {
				if !reflect.DeepEqual(r, in.splits[Train][idx[k]]) {
					t.Fatalf("record %d (index %d) differs", k, idx[k])
				}
			}
		})
	}
	if o, _ := d.PassOrder(Train, Order{Shuffle: true, Buffer: 1, Interleave: 1}); slices.IsSorted(o) {
		t.Error("Buffer 1 and Interleave 1 do not shuffle the shards")
	}
	// A split no larger than the buffer, and a missing one.
	got, _ := d.PassOrder(Test, Order{Shuffle: true, Seed: 5})
	if s := slices.Sorted(slices.Values(got)); !slices.Equal(s, []int{0, 1, 2, 3, 4}) {
		t.Errorf("test split: %v", got)
	}
	if got, _ := d.PassOrder("nope", Order{Shuffle: true}); len(got) != 0 {
		t.Errorf("missing split: %v", got)
	}
	if recs, _ := readAll(t, d, "nope", Order{Shuffle: true}, 0); len(recs) != 0 {
		t.Errorf("missing split: %d records", len(recs))
	}
}

// TestReaderResume checks that a Reader started at any position gives the
// rest of the pass that a Reader from the start gives.
func TestReaderResume(t *testing.T) {
	dsSetShardLimits(t, 16, 1<<20)
	const n = 150
	in := dsMakeInput(3, 3, 2, map[string]int{Train: n})
	dir := filepath.Join(t.TempDir(), "ds")
	dsWrite(t, dir, in)
	d := dsOpen(t, dir)
	for _, o := range []Order{{}, {Shuffle: true, Seed: 4, Buffer: 20, Interleave: 3}, {Shuffle: true, Seed: 4, Pass: 2, Buffer: 100}, {Shuffle: true, Seed: 9}} {
		full, fullIdx := readAll(t, d, Train, o, 0)
		// Starts before the buffer fills, in the steady state, in the drain
		// and at the end.
		for _, start := range []int{1, 5, 19, 20, 21, 64, 100, 131, 149, n} {
			recs, idx := readAll(t, d, Train, o, start)
			if !slices.Equal(idx, fullIdx[start:]) {
				t.Fatalf("%+v from %d: indices %v\nwant %v", o, start, idx, fullIdx[start:])
			}
			if !reflect.DeepEqual(recs, full[start:]) && len(recs) > 0 {
				t.Fatalf("%+v from %d: records differ", o, start)
			}
		}
	}
	if _, err := d.NewReader(context.Background(), Train, Order{}, n+1); err == nil {
		t.Error("start past the end: no error")
	}
	if _, err := d.NewReader(context.Background(), Train, Order{}, -1); err == nil {
		t.Error("negative start: no error")
	}
	if _, err := d.NewReader(context.Background(), Train, Order{Buffer: -1, Interleave: -2, Pass: -1}, 0); err == nil {
		t.Error("bad order: no error")
	}
}

// TestReaderErrors checks a damaged shard met mid-pass, cancellation and
// use after Close.
func TestReaderErrors(t *testing.T) {
	dsSetShardLimits(t, 10, 1<<20)
	in := dsMakeInput(2, 1, 2, map[string]int{Train: 40})
	dir := filepath.Join(t.TempDir(), "ds")
	dsWrite(t, dir, in)
	d := dsOpen(t, dir)
	ctx, cancel := context.WithCancel(context.Background())
	r, err := d.NewReader(ctx, Train, Order{Shuffle: true, Buffer: 5}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, _, err := r.Next(); !errors.Is(err, context.Canceled) {
		t.Errorf("after cancel: %v", err)
	}
	r.Close()
	r, _ = d.NewReader(context.Background(), Train, Order{}, 0)
	r.Close()
	if _, _, err := r.Next(); err == nil {
		t.Error("Next after Close: no error")
	}

	// Damage the third shard's last record: the pass fails when it gets
	// there, naming the shard and the record.
	shard := "train-00002.zst"
	raw := dsRawShard(t, filepath.Join(dir, shard))
	raw[dsRecordOffset(raw, 9)+4+6] ^= 0xff // a payload byte of record 9
	dsReplaceShard(t, dir, shard, dsCompress(t, raw))
	d = dsOpen(t, dir)
	r, _ = d.NewReader(context.Background(), Train, Order{}, 0)
	defer r.Close()
	k := 0
	for ; ; k++ {
		if _, _, err = r.Next(); err != nil {
			break
		}
	}
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.Shard != shard || ce.Record != 9 || ce.Msg != "checksum mismatch" || k != 29 {
		t.Errorf("after %d records: %v", k, err)
	}
	if _, _, err2 := r.Next(); err2 != err {
		t.Errorf("the next call returned %v", err2)
	}

	// A shard file rewritten with the same records but other bytes (the
	// manifest not updated): its records read, and the SHA-256 check at
	// its end fails.
	shard = "train-00001.zst"
	raw = dsRawShard(t, filepath.Join(dir, shard))
	zw, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBestCompression))
	if err := os.WriteFile(filepath.Join(dir, shard), zw.EncodeAll(raw, nil), 0o644); err != nil {
		t.Fatal(err)
	}
	r2, _ := d.NewReader(context.Background(), Train, Order{}, 0)
	defer r2.Close()
	for k = 0; ; k++ {
		if _, _, err = r2.Next(); err != nil {
			break
		}
	}
	if !errors.As(err, &ce) || ce.Shard != shard || ce.Record != -1 || !strings.Contains(ce.Msg, "SHA-256 mismatch") || k != 19 {
		t.Errorf("after %d records: %v", k, err)
	}
}
