package data

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/klauspost/compress/zstd"
)

var updateDatasetTestdata = flag.Bool("update-dataset-testdata", false, "rewrite testdata/dataset/tiny")

// dsRecord returns a deterministic record for index i of a dataset of
// size×size×ch images with nclasses classes (0 means unlabelled).
func dsRecord(size, ch, nclasses, i int, split string) Record {
	px := make([]uint8, size*size*ch)
	for j := range px {
		px[j] = uint8(i*31 + j*7 + len(split))
	}
	label := -1
	if nclasses > 0 {
		label = i % nclasses
	}
	return Record{Pixels: px, Label: label, Origin: fmt.Sprintf("%s/img-%04d.png", split, i)}
}

// dsInput is a dataset to write: records by split, in order.
type dsInput struct {
	pre     Preprocess
	classes []string
	splits  map[string][]Record
}

func dsMakeInput(size, ch, nclasses int, counts map[string]int) dsInput {
	in := dsInput{pre: Preprocess{Size: size, Channels: ch}, splits: map[string][]Record{}}
	for c := range nclasses {
		in.classes = append(in.classes, fmt.Sprintf("class%d", c))
	}
	for split, n := range counts {
		for i := range n {
			in.splits[split] = append(in.splits[split], dsRecord(size, ch, nclasses, i, split))
		}
	}
	return in
}

// dsSetShardLimits lowers the Writer's shard limits for the test.
func dsSetShardLimits(t testing.TB, records, bytes int) {
	oldR, oldB := shardRecords, shardBytes
	shardRecords, shardBytes = records, bytes
	t.Cleanup(func() { shardRecords, shardBytes = oldR, oldB })
}

// dsWrite writes in to dir, interleaving the splits' records.
func dsWrite(t testing.TB, dir string, in dsInput) (*Manifest, string) {
	t.Helper()
	w, err := Create(dir, in.pre, in.classes, Provenance{Format: "test", Inputs: []string{"in"}})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	splits := slices.Sorted(mapKeys(in.splits))
	for i := 0; ; i++ {
		added := false
		for _, s := range splits {
			if i < len(in.splits[s]) {
				if err := w.Add(s, in.splits[s][i]); err != nil {
					t.Fatal(err)
				}
				added = true
			}
		}
		if !added {
			break
		}
	}
	m, id, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	return m, id
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func dsOpen(t testing.TB, dir string) *Dataset {
	t.Helper()
	d, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestDatasetRoundTrip(t *testing.T) {
	cases := []struct {
		name           string
		size, ch, ncls int
		counts         map[string]int
		shardRecs      int
		shardBytes     int
		wantShards     map[string]int
	}{
		{"grey labelled", 4, 1, 10, map[string]int{Train: 250, Test: 60, Val: 17}, 50, 1 << 20,
			map[string]int{Train: 5, Test: 2, Val: 1}},
		{"rgb by bytes", 5, 3, 3, map[string]int{Train: 120, Test: 9}, 1000, 1000,
			// payload: 6 + len("train/img-0000.png") 18 + 75 = 99 bytes → 10 a shard.
			map[string]int{Train: 12, Test: 1}},
		{"unlabelled", 3, 3, 0, map[string]int{Unlabeled: 301}, 100, 1 << 20, map[string]int{Unlabeled: 4}},
		{"one per shard", 2, 1, 2, map[string]int{Train: 5}, 1, 1 << 20, map[string]int{Train: 5}},
		{"empty", 2, 1, 2, map[string]int{}, 10, 1 << 20, map[string]int{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dsSetShardLimits(t, c.shardRecs, c.shardBytes)
			in := dsMakeInput(c.size, c.ch, c.ncls, c.counts)
			dir := filepath.Join(t.TempDir(), "ds")
			m, id := dsWrite(t, dir, in)
			d := dsOpen(t, dir)
			if d.ID() != id {
				t.Errorf("Open ID %s, Close ID %s", d.ID(), id)
			}
			if got := d.Manifest(); !reflect.DeepEqual(got, m) {
				t.Errorf("Open manifest %+v, Close manifest %+v", got, m)
			}
			if m.Size != c.size || m.Channels != c.ch || m.FormatVersion != 1 || len(m.Classes) != c.ncls ||
				m.Preprocessing.Resize != ResizeCrop || m.Source.Format != "test" {
				t.Errorf("manifest %+v", m)
			}
			gotShards := map[string]int{}
			for _, si := range m.Shards {
				gotShards[si.Split]++
			}
			if !reflect.DeepEqual(gotShards, c.wantShards) {
				t.Errorf("shards by split %v, want %v", gotShards, c.wantShards)
			}
			var wantSplits []string
			for s, n := range c.counts {
				if n > 0 {
					wantSplits = append(wantSplits, s)
				}
			}
			slices.Sort(wantSplits)
			if got := d.Splits(); !slices.Equal(got, wantSplits) {
				t.Errorf("Splits() = %v, want %v", got, wantSplits)
			}
			if err := d.Verify(context.Background()); err != nil {
				t.Errorf("Verify: %v", err)
			}
			for split, want := range in.splits {
				if d.Len(split) != len(want) {
					t.Errorf("Len(%q) = %d, want %d", split, d.Len(split), len(want))
				}
				got, err := d.Load(split)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("Load(%q) differs from what was written", split)
				}
				// Random access, in a random order, equals sequential.
				rng := rand.New(rand.NewPCG(1, 2))
				for _, i := range rng.Perm(len(want)) {
					r, err := d.Read(split, i)
					if err != nil {
						t.Fatal(err)
					}
					if !reflect.DeepEqual(r, want[i]) {
						t.Fatalf("Read(%q, %d) = %+v, want %+v", split, i, r, want[i])
					}
				}
				for _, i := range []int{-1, len(want)} {
					if _, err := d.Read(split, i); err == nil || !strings.Contains(err.Error(), "out of range") {
						t.Errorf("Read(%q, %d): %v, want out of range", split, i, err)
					}
				}
			}
			if d.Len("nope") != 0 {
				t.Error("Len of a missing split is not 0")
			}
		})
	}
}

func TestDatasetID(t *testing.T) {
	dsSetShardLimits(t, 7, 1<<20)
	base := dsMakeInput(3, 1, 2, map[string]int{Train: 20, Test: 5})
	root := t.TempDir()
	_, id1 := dsWrite(t, filepath.Join(root, "a"), base)
	_, id2 := dsWrite(t, filepath.Join(root, "b"), base)
	if id1 != id2 {
		t.Errorf("same input, different IDs %s and %s", id1, id2)
	}
	m1, _ := os.ReadFile(filepath.Join(root, "a", ManifestFile))
	m2, _ := os.ReadFile(filepath.Join(root, "b", ManifestFile))
	if !bytes.Equal(m1, m2) {
		t.Error("same input, different manifests")
	}
	if sum := sha256.Sum256(m1); hex.EncodeToString(sum[:]) != id1 {
		t.Error("ID is not the SHA-256 of manifest.json")
	}
	changes := map[string]func(in *dsInput){
		"pixel":  func(in *dsInput) { in.splits[Test][3].Pixels[2]++ },
		"label":  func(in *dsInput) { in.splits[Train][19].Label = 1 - in.splits[Train][19].Label },
		"origin": func(in *dsInput) { in.splits[Train][0].Origin += "x" },
	}
	for name, change := range changes {
		t.Run(name, func(t *testing.T) {
			in := dsMakeInput(3, 1, 2, map[string]int{Train: 20, Test: 5})
			change(&in)
			_, id := dsWrite(t, filepath.Join(t.TempDir(), "c"), in)
			if id == id1 {
				t.Errorf("a changed %s gives the same ID", name)
			}
		})
	}
}

func TestCreateRefusesExisting(t *testing.T) {
	root := t.TempDir()
	cases := map[string]func(path string){
		"empty dir":     func(p string) { os.Mkdir(p, 0o755) },
		"file":          func(p string) { os.WriteFile(p, []byte("x"), 0o644) },
		"dangling link": func(p string) { os.Symlink(filepath.Join(root, "nowhere"), p) },
	}
	for name, setup := range cases {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(root, strings.ReplaceAll(name, " ", "-"))
			setup(dir)
			_, err := Create(dir, Preprocess{}, nil, Provenance{})
			if !errors.Is(err, fs.ErrExist) || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "remove it") {
				t.Errorf("Create over %s: %v", name, err)
			}
		})
	}
	t.Run("appears before Close", func(t *testing.T) {
		dir := filepath.Join(root, "late")
		w, err := Create(dir, Preprocess{Size: 2, Channels: 1}, nil, Provenance{})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Add(Train, Record{Pixels: make([]uint8, 4), Label: -1}); err != nil {
			t.Fatal(err)
		}
		os.Mkdir(dir, 0o755)
		os.WriteFile(filepath.Join(dir, "mine"), []byte("keep"), 0o644)
		if _, _, err := w.Close(); !errors.Is(err, fs.ErrExist) {
			t.Errorf("Close: %v, want fs.ErrExist", err)
		}
		if b, err := os.ReadFile(filepath.Join(dir, "mine")); err != nil || string(b) != "keep" {
			t.Errorf("user's file: %q, %v", b, err)
		}
		if m, _ := filepath.Glob(dir + ".partial-*"); len(m) != 0 {
			t.Errorf("left behind %v", m)
		}
	})
}

func TestAbort(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "sub", "ds")
	w, err := Create(dir, Preprocess{Size: 2, Channels: 3}, []string{"a", "b"}, Provenance{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		if err := w.Add(Test, dsRecord(2, 3, 2, i, Test)); err != nil {
			t.Fatal(err)
		}
	}
	w.Abort()
	w.Abort()
	if ents, _ := os.ReadDir(filepath.Join(root, "sub")); len(ents) != 0 {
		t.Errorf("Abort left %v", ents)
	}
	if err := w.Add(Test, dsRecord(2, 3, 2, 0, Test)); err == nil {
		t.Error("Add after Abort succeeded")
	}
	if _, _, err := w.Close(); err == nil {
		t.Error("Close after Abort succeeded")
	}

	// After Close, Abort does nothing.
	dir = filepath.Join(root, "kept")
	dsWrite(t, dir, dsMakeInput(2, 1, 0, map[string]int{Unlabeled: 3}))
	d := dsOpen(t, dir)
	if err := d.Verify(context.Background()); err != nil {
		t.Error(err)
	}
}

// TestWriterAttach checks that an attached file appears with the dataset,
// holding the ID, that it leaves the ID alone, and that a failing one
// fails Close and leaves nothing.
func TestWriterAttach(t *testing.T) {
	root := t.TempDir()
	write := func(dir string, fill func(string) ([]byte, error)) (string, error) {
		w, err := Create(dir, Preprocess{Size: 2, Channels: 1}, nil, Provenance{})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Abort()
		if err := w.Add(Train, dsRecord(2, 1, 0, 0, Train)); err != nil {
			t.Fatal(err)
		}
		if fill != nil {
			w.Attach("notes.json", fill)
		}
		_, id, err := w.Close()
		return id, err
	}
	plain, err := write(filepath.Join(root, "plain"), nil)
	if err != nil {
		t.Fatal(err)
	}
	id, err := write(filepath.Join(root, "attached"), func(id string) ([]byte, error) { return []byte(id), nil })
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "attached", "notes.json")); err != nil || string(b) != id || id != plain {
		t.Errorf("attached file %q (%v), ID %s; want the ID, and the ID without it, %s", b, err, id, plain)
	}
	boom := errors.New("boom")
	if _, err := write(filepath.Join(root, "failed"), func(string) ([]byte, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Errorf("err = %v, want boom", err)
	}
	if ents, _ := os.ReadDir(root); len(ents) != 2 {
		t.Errorf("a failed Close left %v", ents)
	}
	w, err := Create(filepath.Join(root, "x"), Preprocess{}, nil, Provenance{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	for _, name := range []string{"", ManifestFile, "train-00000.zst", "a/b", ".hidden", "twice"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Attach(%q) did not panic", name)
				}
			}()
			if name == "twice" {
				w.Attach(name, nil)
			}
			w.Attach(name, nil)
		}()
	}
}

func TestAddInvalid(t *testing.T) {
	good := func() Record { return dsRecord(3, 3, 4, 1, Train) }
	cases := []struct {
		name  string
		split string
		r     func() Record
		msg   string
	}{
		{"short pixels", Train, func() Record { r := good(); r.Pixels = r.Pixels[1:]; return r }, "26 pixel bytes, want 27 (3×3×3)"},
		{"long pixels", Train, func() Record { r := good(); r.Pixels = append(r.Pixels, 0); return r }, "28 pixel bytes"},
		{"label too big", Train, func() Record { r := good(); r.Label = 4; return r }, "label 4 out of range [-1, 4)"},
		{"label -2", Test, func() Record { r := good(); r.Label = -2; return r }, "label -2 out of range"},
		{"long origin", Train, func() Record { r := good(); r.Origin = strings.Repeat("o", MaxOrigin+1); return r }, "origin of 4097 bytes"},
		{"bad split", "Train/..", good, "bad split name"},
	}
	dsSetShardLimits(t, 2, 1<<20)
	dir := filepath.Join(t.TempDir(), "ds")
	w, err := Create(dir, Preprocess{Size: 3}, []string{"a", "b", "c", "d"}, Provenance{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	var want []Record
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := w.Add(c.split, c.r()); err == nil || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("Add: %v, want an error containing %q", err, c.msg)
			}
		})
		r := dsRecord(3, 3, 4, i, Train)
		if err := w.Add("", r); err != nil { // "" means Train
			t.Fatal(err)
		}
		want = append(want, r)
	}
	w.SetCounts(3, 4)
	m, _, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	if m.Duplicates != 3 || m.Skipped != 4 || m.Splits[Train] != len(want) || len(m.Splits) != 1 {
		t.Errorf("manifest %+v", m)
	}
	got, err := dsOpen(t, dir).Load(Train)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Load: %v, records equal: %v", err, reflect.DeepEqual(got, want))
	}
}

func TestCreateInvalid(t *testing.T) {
	root := t.TempDir()
	for name, c := range map[string]struct {
		p       Preprocess
		classes []string
	}{
		"channels": {Preprocess{Channels: 2}, nil},
		"size":     {Preprocess{Size: -1}, nil},
		"repeated": {Preprocess{}, []string{"a", "b", "a"}},
		"empty":    {Preprocess{}, []string{""}},
	} {
		dir := filepath.Join(root, name)
		if _, err := Create(dir, c.p, c.classes, Provenance{}); err == nil {
			t.Errorf("%s: Create succeeded", name)
		}
		if ents, _ := os.ReadDir(root); len(ents) != 0 {
			t.Errorf("%s: left %v", name, ents)
		}
	}
}

func TestStream(t *testing.T) {
	dsSetShardLimits(t, 16, 1<<20)
	in := dsMakeInput(2, 1, 3, map[string]int{Train: 203, Test: 1})
	dir := filepath.Join(t.TempDir(), "ds")
	dsWrite(t, dir, in)
	d := dsOpen(t, dir)
	ctx := context.Background()
	stream := func(t *testing.T, split string, buf int, seed uint64) []string {
		t.Helper()
		var got []string
		if err := d.Stream(ctx, split, buf, seed, func(r Record) error {
			got = append(got, r.Origin)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return got
	}
	var fileOrder []string
	for _, r := range in.splits[Train] {
		fileOrder = append(fileOrder, r.Origin)
	}
	for _, buf := range []int{-1, 0, 1, 2, 7, 64, 203, 1000} {
		t.Run(fmt.Sprint("buffer ", buf), func(t *testing.T) {
			a := stream(t, Train, buf, 1)
			if b := stream(t, Train, buf, 1); !slices.Equal(a, b) {
				t.Error("same seed, different order")
			}
			if buf <= 1 {
				if !slices.Equal(a, fileOrder) {
					t.Error("not in file order")
				}
				return
			}
			if slices.Equal(a, fileOrder) {
				t.Error("not shuffled")
			}
			if c := stream(t, Train, buf, 2); slices.Equal(a, c) {
				t.Error("seeds 1 and 2 give the same order")
			}
			if s := slices.Sorted(slices.Values(a)); !slices.Equal(s, fileOrder) {
				t.Errorf("not every record exactly once: %d records", len(a))
			}
		})
	}
	if got := stream(t, Test, 8, 3); !slices.Equal(got, []string{in.splits[Test][0].Origin}) {
		t.Errorf("test split: %v", got)
	}
	if got := stream(t, "nope", 8, 3); len(got) != 0 {
		t.Errorf("missing split: %v", got)
	}

	stop := errors.New("stop")
	n := 0
	err := d.Stream(ctx, Train, 10, 1, func(Record) error {
		if n++; n == 50 {
			return stop
		}
		return nil
	})
	if err != stop || n != 50 {
		t.Errorf("fn's error: %v after %d records", err, n)
	}
	cctx, cancel := context.WithCancel(ctx)
	n = 0
	err = d.Stream(cctx, Train, 10, 1, func(Record) error {
		if n++; n == 20 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || n > 40 {
		t.Errorf("cancelled: %v after %d records", err, n)
	}
}

func TestReadConcurrent(t *testing.T) {
	dsSetShardLimits(t, 10, 1<<20)
	in := dsMakeInput(3, 3, 5, map[string]int{Train: 100})
	dir := filepath.Join(t.TempDir(), "ds")
	dsWrite(t, dir, in)
	d := dsOpen(t, dir)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 0))
			for range 200 {
				i := rng.IntN(100)
				r, err := d.Read(Train, i)
				if err != nil {
					t.Error(err)
					return
				}
				if !reflect.DeepEqual(r, in.splits[Train][i]) {
					t.Errorf("record %d differs", i)
					return
				}
				r.Pixels[0]++ // the caller's to change
			}
		}()
	}
	wg.Wait()
}

// dsRawShard returns the decompressed bytes of a shard file.
func dsRawShard(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zstd.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func dsCompress(t testing.TB, raw []byte) []byte {
	t.Helper()
	zw, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	return zw.EncodeAll(raw, nil)
}

// dsRecordOffset returns the offset, in a decompressed shard, of record i's
// length field.
func dsRecordOffset(raw []byte, i int) int {
	off := shardHeader
	for range i {
		off += 4 + int(binary.LittleEndian.Uint32(raw[off:])) + 4
	}
	return off
}

// dsEditManifest rewrites dir's manifest.json after edit changes it.
func dsEditManifest(t testing.TB, dir string, edit func(m map[string]any)) {
	t.Helper()
	path := filepath.Join(dir, ManifestFile)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	if b, err = json.MarshalIndent(m, "", "  "); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// dsReplaceShard replaces a shard file with compressed bytes b and puts
// their SHA-256 in the manifest, as if the bad shard had been written so.
func dsReplaceShard(t testing.TB, dir, file string, b []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, file), b, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	dsEditManifest(t, dir, func(m map[string]any) {
		for _, s := range m["shards"].([]any) {
			if s := s.(map[string]any); s["file"] == file {
				s["sha256"] = hex.EncodeToString(sum[:])
			}
		}
	})
}

func TestDatasetCorrupt(t *testing.T) {
	const shard = "train-00001.zst" // records 40 to 79 of train
	cases := []struct {
		name     string
		corrupt  func(t *testing.T, dir string)
		open     bool   // Open fails, rather than reading the shard
		shard    string // for reading errors: the shard named
		record   int    // and the record
		msg      string
		notExist bool
	}{
		{name: "flipped byte", shard: shard, record: -1, msg: "SHA-256 mismatch: shard file changed since ingest",
			corrupt: func(t *testing.T, dir string) {
				p := filepath.Join(dir, shard)
				b, _ := os.ReadFile(p)
				b[len(b)/2] ^= 0x10
				os.WriteFile(p, b, 0o644)
			}},
		{name: "record checksum", shard: shard, record: 17, msg: "checksum mismatch",
			corrupt: func(t *testing.T, dir string) {
				raw := dsRawShard(t, filepath.Join(dir, shard))
				raw[dsRecordOffset(raw, 17)+4+30] ^= 1 // a pixel of record 17
				dsReplaceShard(t, dir, shard, dsCompress(t, raw))
			}},
		{name: "truncated file", shard: shard, record: -1, msg: "truncated zstd stream",
			corrupt: func(t *testing.T, dir string) {
				b, _ := os.ReadFile(filepath.Join(dir, shard))
				dsReplaceShard(t, dir, shard, b[:len(b)-40])
			}},
		{name: "truncated stream", shard: shard, record: -1, msg: "truncated: 39 records, the manifest says 40",
			corrupt: func(t *testing.T, dir string) {
				raw := dsRawShard(t, filepath.Join(dir, shard))
				dsReplaceShard(t, dir, shard, dsCompress(t, raw[:dsRecordOffset(raw, 39)]))
			}},
		{name: "truncated record", shard: shard, record: 39, msg: "truncated",
			corrupt: func(t *testing.T, dir string) {
				raw := dsRawShard(t, filepath.Join(dir, shard))
				dsReplaceShard(t, dir, shard, dsCompress(t, raw[:len(raw)-5]))
			}},
		{name: "garbled zstd", shard: shard, record: -1, msg: "corrupt zstd stream",
			corrupt: func(t *testing.T, dir string) {
				dsReplaceShard(t, dir, shard, []byte("this is not zstd at all"))
			}},
		{name: "trailing bytes", shard: shard, record: -1, msg: "trailing bytes after 40 records",
			corrupt: func(t *testing.T, dir string) {
				raw := dsRawShard(t, filepath.Join(dir, shard))
				dsReplaceShard(t, dir, shard, dsCompress(t, append(raw, 0)))
			}},
		{name: "bad magic", shard: shard, record: -1, msg: `bad magic "PWSHARD2"`,
			corrupt: func(t *testing.T, dir string) {
				raw := dsRawShard(t, filepath.Join(dir, shard))
				raw[7] = '2'
				dsReplaceShard(t, dir, shard, dsCompress(t, raw))
			}},
		{name: "shard version", shard: shard, record: -1, msg: "shard format version 9: this build reads version 1",
			corrupt: func(t *testing.T, dir string) {
				raw := dsRawShard(t, filepath.Join(dir, shard))
				raw[8] = 9
				dsReplaceShard(t, dir, shard, dsCompress(t, raw))
			}},
		{name: "payload too short", shard: shard, record: 0, msg: "payload of 4 bytes: 4×4×1 images need 22 to 4118",
			corrupt: func(t *testing.T, dir string) {
				raw := dsRawShard(t, filepath.Join(dir, shard))
				binary.LittleEndian.PutUint32(raw[shardHeader:], 4)
				dsReplaceShard(t, dir, shard, dsCompress(t, raw))
			}},
		{name: "image size", shard: shard, record: 5, msg: "payload of 41 bytes with a 18-byte origin: 4×4×1 images need 40",
			corrupt: func(t *testing.T, dir string) {
				// Record 5 stored with one pixel too many and a matching length and CRC.
				raw := dsRawShard(t, filepath.Join(dir, shard))
				off := dsRecordOffset(raw, 5)
				n := int(binary.LittleEndian.Uint32(raw[off:]))
				payload := append(slices.Clone(raw[off+4:off+4+n]), 0)
				var rec []byte
				rec = binary.LittleEndian.AppendUint32(rec, uint32(len(payload)))
				rec = append(rec, payload...)
				rec = binary.LittleEndian.AppendUint32(rec, crc32.Checksum(payload, castagnoli))
				raw = slices.Concat(raw[:off], rec, raw[off+4+n+4:])
				dsReplaceShard(t, dir, shard, dsCompress(t, raw))
			}},
		{name: "format version", open: true, record: -1, msg: "format_version 2 is not supported: this build reads version 1",
			corrupt: func(t *testing.T, dir string) {
				dsEditManifest(t, dir, func(m map[string]any) { m["format_version"] = 2 })
			}},
		{name: "missing shard", open: true, record: -1, msg: "missing 2 of 4 shard files: test-00000.zst, train-00001.zst", notExist: true,
			corrupt: func(t *testing.T, dir string) {
				os.Remove(filepath.Join(dir, shard))
				os.Remove(filepath.Join(dir, "test-00000.zst"))
			}},
		{name: "counts", open: true, record: -1, msg: `splits: "train" has 101 records, but its shards hold 100`,
			corrupt: func(t *testing.T, dir string) {
				dsEditManifest(t, dir, func(m map[string]any) { m["splits"].(map[string]any)["train"] = 101 })
			}},
		{name: "first index", open: true, record: -1, msg: `first_index 41: want 40`,
			corrupt: func(t *testing.T, dir string) {
				dsEditManifest(t, dir, func(m map[string]any) { m["shards"].([]any)[2].(map[string]any)["first_index"] = 41 })
			}},
		{name: "path in file name", open: true, record: -1, msg: `file "../train-00000.zst": want "train-00000.zst"`,
			corrupt: func(t *testing.T, dir string) {
				dsEditManifest(t, dir, func(m map[string]any) { m["shards"].([]any)[1].(map[string]any)["file"] = "../train-00000.zst" })
			}},
		{name: "unknown field", open: true, record: -1, msg: `unknown field "colour"`,
			corrupt: func(t *testing.T, dir string) {
				dsEditManifest(t, dir, func(m map[string]any) { m["colour"] = "red" })
			}},
		{name: "huge shard", open: true, record: -1, msg: "1000000000 records: want 1 to",
			corrupt: func(t *testing.T, dir string) {
				dsEditManifest(t, dir, func(m map[string]any) {
					m["shards"].([]any)[3].(map[string]any)["records"] = 1e9
					m["splits"].(map[string]any)["train"] = 1e9 + 60
				})
			}},
		{name: "not JSON", open: true, record: -1, msg: "bad JSON",
			corrupt: func(t *testing.T, dir string) {
				os.WriteFile(filepath.Join(dir, ManifestFile), []byte("{"), 0o644)
			}},
	}
	dsSetShardLimits(t, 40, 1<<20)
	in := dsMakeInput(4, 1, 2, map[string]int{Train: 100, Test: 3})
	good := filepath.Join(t.TempDir(), "good")
	dsWrite(t, good, in)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "ds")
			if err := os.CopyFS(dir, os.DirFS(good)); err != nil {
				t.Fatal(err)
			}
			c.corrupt(t, dir)
			check := func(what string, err error) {
				t.Helper()
				var ce *CorruptError
				if !errors.As(err, &ce) {
					t.Fatalf("%s: %v, want a *CorruptError", what, err)
				}
				t.Logf("%s: %v", what, err)
				if ce.Dir != dir || ce.Shard != c.shard || ce.Record != c.record || !strings.Contains(ce.Error(), c.msg) {
					t.Errorf("%s: %#v\n%v\nwant shard %q, record %d, message containing %q", what, ce, err, c.shard, c.record, c.msg)
				}
				if c.notExist && !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("%s: %v does not match fs.ErrNotExist", what, err)
				}
			}
			d, err := Open(dir)
			if c.open {
				check("Open", err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			check("Verify", d.Verify(context.Background()))
			_, err = d.Read(Train, 40+max(c.record, 0))
			check("Read", err)
			_, err = d.Load(Train)
			check("Load", err)
			check("Stream", d.Stream(context.Background(), Train, 4, 1, func(Record) error { return nil }))
			// The other shards still read.
			if r, err := d.Read(Train, 80); err != nil || !reflect.DeepEqual(r, in.splits[Train][80]) {
				t.Errorf("Read of a good shard: %v", err)
			}
		})
	}
}

func TestCorruptErrorString(t *testing.T) {
	for _, c := range []struct {
		e    CorruptError
		want string
	}{
		{CorruptError{Dir: "d", Shard: "train-00000.zst", Record: 17, Msg: "checksum mismatch"},
			`data: dataset "d": shard "train-00000.zst": record 17: checksum mismatch`},
		{CorruptError{Dir: "d", Shard: "test-00001.zst", Record: -1, Msg: "corrupt zstd stream", Err: io.ErrUnexpectedEOF},
			`data: dataset "d": shard "test-00001.zst": corrupt zstd stream: unexpected EOF`},
		{CorruptError{Dir: "d", Record: -1, Msg: "manifest.json: bad"}, `data: dataset "d": manifest.json: bad`},
	} {
		if got := c.e.Error(); got != c.want {
			t.Errorf("got %s\nwant %s", got, c.want)
		}
	}
}

func TestOpenMissing(t *testing.T) {
	_, err := Open(filepath.Join(t.TempDir(), "nope"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open of a missing dir: %v", err)
	}
}

// The dataset in testdata/dataset/tiny seeds FuzzReadShard and pins the
// format: it must keep opening and decoding to the same records.
const dsTestdata = "testdata/dataset/tiny"

func dsTinyInput() dsInput {
	in := dsMakeInput(3, 3, 2, map[string]int{Train: 5, Test: 2})
	in.splits[Train][4].Label = -1
	return in
}

func TestDatasetTestdata(t *testing.T) {
	in := dsTinyInput()
	if *updateDatasetTestdata {
		os.RemoveAll(dsTestdata)
		dsWrite(t, dsTestdata, in)
	}
	d := dsOpen(t, dsTestdata)
	if err := d.Verify(context.Background()); err != nil {
		t.Fatal(err)
	}
	for split, want := range in.splits {
		got, err := d.Load(split)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("split %q: %v; records equal: %v", split, err, reflect.DeepEqual(got, want))
		}
	}
}

// FuzzReadShard checks that no input panics the shard decoder, either as a
// compressed shard or as a decompressed stream, and that a successful decode
// returns the expected number of well-formed records.
func FuzzReadShard(f *testing.F) {
	m := dsOpen(f, dsTestdata).Manifest()
	for _, si := range m.Shards {
		b, err := os.ReadFile(filepath.Join(dsTestdata, si.File))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint8(si.Records))
		f.Add(dsRawShard(f, filepath.Join(dsTestdata, si.File)), uint8(si.Records))
	}
	f.Add([]byte(shardMagic+"\x01\x00\x00\x00"), uint8(0))
	f.Add([]byte(shardMagic+"\x01\x00\x00\x00\xff\xff\xff\xff"), uint8(1))
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd}, uint8(1))
	g := shardGeom{size: m.Size, channels: m.Channels, classes: len(m.Classes)}
	f.Fuzz(func(t *testing.T, b []byte, want uint8) {
		for _, decode := range []func() ([]Record, error){
			func() ([]Record, error) { return decodeShard(b, g, int(want)) },
			func() ([]Record, error) { return parseShard(bytes.NewReader(b), g, int(want)) },
		} {
			recs, err := decode()
			if err != nil {
				var ce *CorruptError
				if recs != nil || !errors.As(err, &ce) {
					t.Fatalf("records %v, error %v", recs, err)
				}
				continue
			}
			if len(recs) != int(want) {
				t.Fatalf("%d records, want %d", len(recs), want)
			}
			for _, r := range recs {
				if len(r.Pixels) != g.pixels() || r.Label < -1 || r.Label >= g.classes || len(r.Origin) > MaxOrigin {
					t.Fatalf("bad record %+v", r)
				}
			}
		}
	})
}

func ExampleCreate() {
	root, err := os.MkdirTemp("", "example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(root)
	dir := filepath.Join(root, "tiny")

	// Write two 2×2 grey images.
	w, err := Create(dir, Preprocess{Size: 2, Channels: 1}, []string{"dark", "light"}, Provenance{Format: "example"})
	if err != nil {
		log.Fatal(err)
	}
	defer w.Abort() // removes the partial dataset unless Close succeeded
	w.Add(Train, Record{Pixels: []uint8{0, 10, 20, 30}, Label: 0, Origin: "a.png"})
	w.Add(Test, Record{Pixels: []uint8{200, 210, 220, 230}, Label: 1, Origin: "b.png"})
	m, id, err := w.Close()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(m.Splits, len(id))

	// Read them back.
	d, err := Open(dir)
	if err != nil {
		log.Fatal(err)
	}
	r, err := d.Read(Test, 0)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(d.ID() == id, d.Splits(), r.Pixels, d.Manifest().Classes[r.Label], r.Origin)
	// Output:
	// map[test:1 train:1] 64
	// true [test train] [200 210 220 230] light b.png
}

// BenchmarkDataset measures writing, loading and streaming 32×32×3 records.
func BenchmarkDataset(b *testing.B) {
	const n = 5000
	in := dsMakeInput(32, 3, 10, map[string]int{Train: n})
	dir := filepath.Join(b.TempDir(), "ds")
	b.Run("Write/32x32x3", func(b *testing.B) {
		b.SetBytes(n * 32 * 32 * 3)
		for i := range b.N {
			dsWrite(b, filepath.Join(b.TempDir(), fmt.Sprint(i)), in)
		}
	})
	dsWrite(b, dir, in)
	d := dsOpen(b, dir)
	b.Run("Load/32x32x3", func(b *testing.B) {
		b.SetBytes(n * 32 * 32 * 3)
		for range b.N {
			if _, err := d.Load(Train); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Stream/32x32x3/buffer1000", func(b *testing.B) {
		b.SetBytes(n * 32 * 32 * 3)
		for i := range b.N {
			if err := d.Stream(context.Background(), Train, 1000, uint64(i), func(Record) error { return nil }); err != nil {
				b.Fatal(err)
			}
		}
	})
}
