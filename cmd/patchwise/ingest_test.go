package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/patchwise-ml/patchwise/data"
)

// TestIngestAndInspect runs ingest on a folder with good and bad images
// (exit 3, the bad one named), then inspect on the result, as a user would.
func TestIngestAndInspect(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "photos")
	img := image.NewGray(image.Rect(0, 0, 20, 10))
	for i := range img.Pix {
		img.Pix[i] = uint8(i)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		name string
		b    []byte
	}{
		{"a/one.png", buf.Bytes()}, {"a/two.png", buf.Bytes()}, {"b/three.png", buf.Bytes()},
		{"b/broken.jpg", []byte("not a jpeg")},
	} {
		p := filepath.Join(src, f.name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "ds")
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"ingest", src, "-o", out, "--size", "8", "--channels", "1"}, &stdout, &stderr)
	if code != exitSkipped {
		t.Fatalf("ingest exit %d, want %d; stderr:\n%s", code, exitSkipped, stderr.String())
	}
	if !strings.Contains(stderr.String(), "b/broken.jpg") {
		t.Errorf("stderr does not name the bad file:\n%s", stderr.String())
	}
	if !strings.Contains(stdout.String(), "train     3") {
		t.Errorf("summary:\n%s", stdout.String())
	}

	// A second ingest to the same place is refused, and the first is intact.
	stdout.Reset()
	stderr.Reset()
	if code := run(context.Background(), []string{"ingest", src, "-o", out}, &stdout, &stderr); code != exitFailure {
		t.Fatalf("second ingest exit %d, want %d", code, exitFailure)
	}

	stdout.Reset()
	stderr.Reset()
	sheet := filepath.Join(dir, "sheet.png")
	if code := run(context.Background(), []string{"inspect", "--json", out, "--sheet", sheet}, &stdout, &stderr); code != exitOK {
		t.Fatalf("inspect exit %d; stderr:\n%s", code, stderr.String())
	}
	var got struct {
		ID            string         `json:"id"`
		FormatVersion int            `json:"format_version"`
		Size          int            `json:"size"`
		Channels      int            `json:"channels"`
		Classes       []string       `json:"classes"`
		Splits        map[string]int `json:"splits"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
		t.Fatalf("inspect --json: %v\n%s", err, stdout.String())
	}
	if len(got.ID) != 64 || got.FormatVersion != 1 || got.Size != 8 || got.Channels != 1 ||
		strings.Join(got.Classes, ",") != "a,b" || got.Splits["train"] != 3 {
		t.Errorf("inspect --json = %+v", got)
	}
	if _, err := os.Stat(sheet); err != nil {
		t.Errorf("no contact sheet: %v", err)
	}
	// The sheet is never overwritten.
	if code := run(context.Background(), []string{"inspect", out, "--sheet", sheet}, &stdout, &stderr); code != exitUsage {
		t.Errorf("inspect over an existing sheet: exit %d, want %d", code, exitUsage)
	}
}

// messyFolder writes a class-folder tree holding a good image of every
// encoding ingest reads (the decoder's test images: JPEG, PNG, GIF, BMP,
// TIFF, WebP) and every kind of bad input: empty, truncated, non-image,
// header-only and decompression-bomb files, a dangling link and a symbolic
// link loop. It returns the good and the bad files' paths.
func messyFolder(t *testing.T, root string) (good, bad []string) {
	t.Helper()
	imgs, err := filepath.Glob("../../data/testdata/images/*")
	if err != nil || len(imgs) < 10 {
		t.Fatalf("the decoder's test images: %v, %v", imgs, err)
	}
	put := func(rel string, b []byte) string {
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var pngb []byte
	for i, src := range imgs {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Base(src) == "halves.png" {
			pngb = b
		}
		good = append(good, put(fmt.Sprintf("class%d/%s", i%3, filepath.Base(src)), b))
	}
	bomb := append([]byte{}, pngb[:33]...) // signature and IHDR, claiming 100000×100000
	binary.BigEndian.PutUint32(bomb[16:], 100000)
	binary.BigEndian.PutUint32(bomb[20:], 100000)
	binary.BigEndian.PutUint32(bomb[29:], crc32.ChecksumIEEE(bomb[12:29]))
	bad = []string{
		put("class0/empty.jpg", nil),
		put("class0/truncated.png", pngb[:len(pngb)/2]),
		put("class1/not-an-image.png", []byte("GIF? PNG? neither: plain text\n")),
		put("class1/header-only.png", pngb[:33]),
		put("class2/bomb.png", bomb),
	}
	put("class2/README.txt", []byte("no image extension: not an input\n"))
	for _, l := range [][2]string{{"loop-b.jpg", "class0/loop-a.jpg"}, {"loop-a.jpg", "class0/loop-b.jpg"}, {"gone.png", "class1/dangling.png"}, {"..", "class2/parent"}} {
		p := filepath.Join(root, filepath.FromSlash(l[1]))
		if err := os.Symlink(l[0], p); err != nil {
			t.Skip("no symbolic links:", err)
		}
		if filepath.Ext(p) != "" {
			bad = append(bad, p)
		}
	}
	return good, bad
}

// TestIngestMessyFolder ingests a folder of good and bad files of every
// kind: ingest exits 3, every good image is in the dataset, and
// ingest-report.json names every bad file with its reason; inspect shows
// the count and names the report.
func TestIngestMessyFolder(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "messy")
	good, bad := messyFolder(t, src)
	out := filepath.Join(dir, "ds")
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"ingest", src, "-o", out, "--size", "16", "--max-pixels", "1000000"}, &stdout, &stderr)
	if code != exitSkipped {
		t.Fatalf("ingest exit %d, want %d; stderr:\n%s", code, exitSkipped, stderr.String())
	}
	t.Logf("stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	rep, err := data.ReadIngestReport(out)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Counts.Records != len(good) || rep.Manifest.Splits[data.Train] != len(good) {
		t.Errorf("%d records (train %d), want the %d good images", rep.Counts.Records, rep.Manifest.Splits[data.Train], len(good))
	}
	reasons := map[string]string{}
	for _, s := range rep.Skipped {
		reasons[s.Path] = s.Reason
	}
	for _, b := range bad {
		if reasons[b] == "" {
			t.Errorf("%s: not in the report with a reason", b)
		}
		if !strings.Contains(stderr.String(), b) {
			t.Errorf("%s: not named on stderr", b)
		}
	}
	if len(rep.Skipped) != len(bad) {
		t.Errorf("the report lists %d skipped inputs, want %d: %v", len(rep.Skipped), len(bad), reasons)
	}
	for name, want := range map[string]string{"empty.jpg": "empty", "bomb.png": "too large", "loop-a.jpg": "symbolic link", "not-an-image.png": "unknown image format"} {
		for p, r := range reasons {
			if filepath.Base(p) == name && !strings.Contains(r, want) {
				t.Errorf("%s: reason %q, want it to say %q", name, r, want)
			}
		}
	}
	if !strings.Contains(stderr.String(), filepath.Join(out, "ingest-report.json")) || !strings.Contains(stdout.String(), "report  "+filepath.Join(out, "ingest-report.json")) {
		t.Errorf("ingest does not name its report:\n%s\n%s", stdout.String(), stderr.String())
	}

	stdout.Reset()
	if code := run(context.Background(), []string{"inspect", "--json", out}, &stdout, &stderr); code != exitOK {
		t.Fatalf("inspect exit %d; stderr:\n%s", code, stderr.String())
	}
	var in struct {
		Skipped      int    `json:"skipped"`
		IngestReport string `json:"ingest_report"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &in); err != nil {
		t.Fatal(err)
	}
	if in.Skipped != len(bad) || in.IngestReport != filepath.Join(out, "ingest-report.json") {
		t.Errorf("inspect --json: skipped %d, report %q", in.Skipped, in.IngestReport)
	}
	stdout.Reset()
	if code := run(context.Background(), []string{"inspect", out}, &stdout, &stderr); code != exitOK {
		t.Fatalf("inspect exit %d; stderr:\n%s", code, stderr.String())
	}
	if want := fmt.Sprintf("skipped  %d inputs", len(bad)); !strings.Contains(stdout.String(), want) || !strings.Contains(stdout.String(), "ingest-report.json") {
		t.Errorf("inspect does not say %q and name the report:\n%s", want, stdout.String())
	}
}

// idxFolder writes four tiny IDX files (train: labels 9 and 0; test: 5)
// and, unless classesTxt is "", a classes.txt.
func idxFolder(t *testing.T, classesTxt string) string {
	t.Helper()
	dir := t.TempDir()
	idx := func(dims []uint32, b []byte) []byte {
		h := []byte{0, 0, 8, byte(len(dims))}
		for _, d := range dims {
			h = binary.BigEndian.AppendUint32(h, d)
		}
		return append(h, b...)
	}
	files := map[string][]byte{
		"train-images-idx3-ubyte": idx([]uint32{2, 3, 4}, make([]byte, 24)),
		"train-labels-idx1-ubyte": idx([]uint32{2}, []byte{9, 0}),
		"t10k-images-idx3-ubyte":  idx([]uint32{1, 3, 4}, make([]byte, 12)),
		"t10k-labels-idx1-ubyte":  idx([]uint32{1}, []byte{5}),
	}
	if classesTxt != "" {
		files["classes.txt"] = []byte(classesTxt)
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

var fashionNames = []string{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}

// TestIngestClassNames names the classes of IDX files with --classes (a
// list or a file) and with classes.txt, the flag first; inspect --json
// shows the names; bad names are refused, naming the file and line.
func TestIngestClassNames(t *testing.T) {
	names := t.TempDir()
	fashionFile := filepath.Join(names, "fashion.txt")
	if err := os.WriteFile(fashionFile, []byte(strings.Join(fashionNames, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	badFile := filepath.Join(names, "bad.txt")
	if err := os.WriteFile(badFile, []byte("a\nb\nc\nd\ne\nf\ng\nh\ni\nc\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	letters := "a,b,c,d,e,f,g,h,i,j"
	digits := []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}
	for _, c := range []struct {
		name       string
		classesTxt string
		flag       []string
		code       int
		want       []string // classes, or
		msg        string   // the error
	}{
		{"none", "", nil, exitOK, digits, ""},
		{"list", "", []string{"--classes", strings.Join(fashionNames, ",")}, exitOK, fashionNames, ""},
		{"file", "", []string{"--classes", fashionFile}, exitOK, fashionNames, ""},
		{"classes.txt", strings.Join(fashionNames, "\n"), nil, exitOK, fashionNames, ""},
		{"flag over classes.txt", strings.Join(fashionNames, "\n"), []string{"--classes", letters}, exitOK, strings.Split(letters, ","), ""},
		{"empty name", "", []string{"--classes", "a,,c"}, exitUsage, nil, "--classes: data: class names: name 2: empty name"},
		{"no such file", "", []string{"--classes", filepath.Join(names, "nope.txt")}, exitUsage, nil, "nope.txt"},
		{"repeated in file", "", []string{"--classes", badFile}, exitFailure, nil, `bad.txt": line 10: "c" repeats line 3`},
		{"wrong count", "", []string{"--classes", "a,b"}, exitFailure, nil, "2 names, but the source has 10 classes"},
		{"bad classes.txt", "a\n\nb\n", nil, exitFailure, nil, `classes.txt": line 2: empty name`},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := idxFolder(t, c.classesTxt)
			out := filepath.Join(t.TempDir(), "ds")
			var stdout, stderr bytes.Buffer
			args := append([]string{"ingest", src, "-o", out, "--size", "4", "--channels", "1"}, c.flag...)
			if code := run(context.Background(), args, &stdout, &stderr); code != c.code || !strings.Contains(stderr.String(), c.msg) {
				t.Fatalf("ingest exit %d, want %d; stderr %q, want %q", code, c.code, stderr.String(), c.msg)
			}
			if c.code != exitOK {
				return
			}
			stdout.Reset()
			if code := run(context.Background(), []string{"inspect", "--json", out}, &stdout, &stderr); code != exitOK {
				t.Fatalf("inspect exit %d; stderr:\n%s", code, stderr.String())
			}
			var in struct {
				Classes  []string                  `json:"classes"`
				PerClass map[string]map[string]int `json:"per_class"`
			}
			if err := json.Unmarshal(stdout.Bytes(), &in); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(in.Classes, c.want) || in.PerClass["train"][c.want[9]] != 1 || in.PerClass["test"][c.want[5]] != 1 {
				t.Errorf("inspect --json: classes %q, per class %v; want %q", in.Classes, in.PerClass, c.want)
			}
		})
	}
}

// TestIngestFashionMNISTNames ingests the real Fashion-MNIST with its
// class names and checks that inspect --json shows them.
func TestIngestFashionMNISTNames(t *testing.T) {
	const src = "/usr/share/datasets/fashion-mnist"
	if testing.Short() {
		t.Skip("ingests 70,000 images; skipped with -short")
	}
	if _, err := os.Stat(src); err != nil {
		t.Skipf("Fashion-MNIST not found at %s: apt-get install dataset-fashion-mnist", src)
	}
	out := filepath.Join(t.TempDir(), "fm")
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"ingest", src, "-o", out, "--size", "28", "--channels", "1", "--classes", strings.Join(fashionNames, ",")}, &stdout, &stderr); code != exitOK {
		t.Fatalf("ingest exit %d; stderr:\n%s", code, stderr.String())
	}
	stdout.Reset()
	if code := run(context.Background(), []string{"inspect", "--json", out}, &stdout, &stderr); code != exitOK {
		t.Fatalf("inspect exit %d; stderr:\n%s", code, stderr.String())
	}
	var in struct {
		Classes  []string                  `json:"classes"`
		PerClass map[string]map[string]int `json:"per_class"`
		Skipped  *int                      `json:"skipped"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &in); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(in.Classes, fashionNames) || in.PerClass["train"]["Ankle boot"] != 6000 || in.PerClass["test"]["T-shirt/top"] != 1000 || in.Skipped == nil || *in.Skipped != 0 {
		t.Errorf("inspect --json: classes %q, per class %v, skipped %v", in.Classes, in.PerClass, in.Skipped)
	}
}

// TestIngestCrops ingests a tree of photos into random crops, unlabelled,
// and refuses bad crop ranges as usage errors.
func TestIngestCrops(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "walls")
	img := image.NewGray(image.Rect(0, 0, 300, 200))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 7)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"root.png", "gnome/a.png", "mate/b.png"} {
		p := filepath.Join(src, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "ds")
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"ingest", src, "-o", out, "--size", "16", "--unlabelled", "--crops", "5",
		"--crop-scale", "0.1,0.3", "--crop-ratio", "1,1", "--seed", "4", "--json"}, &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
	}
	var got struct {
		Manifest data.Manifest `json:"manifest"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	m := got.Manifest
	want := data.Crops{N: 5, Scale: [2]float64{0.1, 0.3}, Ratio: [2]float64{1, 1}, Seed: 4}
	if m.Splits[data.Train] != 15 || len(m.Classes) != 0 || m.Preprocessing.Crops != want || m.Preprocessing.Resize != data.ResizeStretch {
		t.Errorf("manifest: splits %v, classes %q, preprocessing %+v", m.Splits, m.Classes, m.Preprocessing)
	}
	for _, args := range [][]string{
		{"--crops", "3", "--crop-scale", "0.5"},
		{"--crops", "3", "--crop-ratio", "a,b"},
		{"--crops", "3", "--crop-scale", "0.6,0.2"},
		{"--crops", "3", "--resize", "crop"},
		{"--crop-scale", "0.1,0.2"},
	} {
		stdout.Reset()
		stderr.Reset()
		if code := run(context.Background(), append([]string{"ingest", src, "-o", filepath.Join(dir, "bad")}, args...), &stdout, &stderr); code != exitUsage {
			t.Errorf("%q: exit %d, want %d; stderr:\n%s", args, code, exitUsage, stderr.String())
		}
	}
}
