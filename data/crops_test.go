package data

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/disintegration/imaging"
)

// TestCropRects checks the crops' geometry: deterministic for a seed and
// origin, different for others, inside the image, with an area and ratio
// in range.
func TestCropRects(t *testing.T) {
	c := Crops{N: 500, Seed: 7}
	const w, h = 4000, 3000
	rs := c.Rects(w, h, "a.jpg")
	if len(rs) != 500 || !slices.Equal(rs, c.Rects(w, h, "a.jpg")) {
		t.Fatal("not deterministic")
	}
	if slices.Equal(rs, c.Rects(w, h, "b.jpg")) || slices.Equal(rs, Crops{N: 500, Seed: 8}.Rects(w, h, "a.jpg")) {
		t.Error("another origin or seed gives the same crops")
	}
	minA, maxA, minR, maxR := math.Inf(1), 0.0, math.Inf(1), 0.0
	for _, r := range rs {
		if !r.In(image.Rect(0, 0, w, h)) || r.Empty() {
			t.Fatalf("crop %v outside the image", r)
		}
		a := float64(r.Dx()*r.Dy()) / (w * h)
		q := float64(r.Dx()) / float64(r.Dy())
		minA, maxA, minR, maxR = min(minA, a), max(maxA, a), min(minR, q), max(maxR, q)
	}
	// Rounding to whole pixels moves area and ratio by less than 0.1 %.
	if minA < 0.25*0.999 || maxA > 1.001 || minA > 0.26 || maxA < 0.74 {
		t.Errorf("areas in [%.4f, %.4f], want [0.25, 0.75] covered (and none above 1)", minA, maxA)
	}
	if minR < 0.75*0.999 || maxR > 4.0/3*1.001 || minR > 0.78 || maxR < 1.3 {
		t.Errorf("ratios in [%.3f, %.3f], want [0.75, 1.333] covered", minR, maxR)
	}
	// Square crops, and an image too narrow for the ratio range: the
	// largest centred crop of a ratio in range.
	for _, r := range (Crops{N: 20, Scale: [2]float64{0.2, 0.2}, Ratio: [2]float64{1, 1}}).Rects(100, 100, "x") {
		if r.Dx() != r.Dy() || r.Dx() != 45 {
			t.Errorf("square crop %v: want 45×45", r)
		}
	}
	for _, r := range (Crops{N: 5, Scale: [2]float64{0.9, 1}, Ratio: [2]float64{1, 2}}).Rects(10, 200, "x") {
		if r != image.Rect(0, 95, 10, 105) {
			t.Errorf("fallback crop %v: want the centred 10×10", r)
		}
	}
}

func TestCropsValidate(t *testing.T) {
	for _, p := range []Preprocess{
		{Crops: Crops{N: -1}},
		{Crops: Crops{N: MaxCrops + 1}},
		{Crops: Crops{Seed: 3}},
		{Crops: Crops{N: 2, Scale: [2]float64{0.5, 0.2}}},
		{Crops: Crops{N: 2, Scale: [2]float64{0, 0.2}}},
		{Crops: Crops{N: 2, Scale: [2]float64{0.2, 1.5}}},
		{Crops: Crops{N: 2, Ratio: [2]float64{2, 1}}},
		{Crops: Crops{N: 2, Ratio: [2]float64{1, math.Inf(1)}}},
		{Crops: Crops{N: 2}, Resize: ResizeCrop},
	} {
		if err := p.Validate(); err == nil {
			t.Errorf("%+v: no error", p)
		}
	}
	p := Preprocess{Crops: Crops{N: 2}}.WithDefaults()
	if err := p.Validate(); err != nil || p.Resize != ResizeStretch || p.Crops.Scale != DefaultCropScale || p.Crops.Ratio != DefaultCropRatio {
		t.Errorf("defaults %+v: %v", p, err)
	}
}

// TestSourceRect checks, for every EXIF orientation, that a crop of the
// displayed image is the crop of the stored image at sourceRect, oriented.
func TestSourceRect(t *testing.T) {
	stored := textured(37, 23)
	r := image.Rect(3, 5, 14, 21)
	for o := 1; o <= 8; o++ {
		shown := orientNRGBA(stored, o)
		want := imaging.Crop(shown, r)
		got := orientNRGBA(imaging.Crop(stored, sourceRect(r, 37, 23, o)), o)
		if !bytes.Equal(got.Pix, want.Pix) || got.Bounds() != want.Bounds() {
			t.Errorf("orientation %d: crop differs", o)
		}
	}
}

// TestConvertCrops checks that each crop is the image's pixels at its
// rectangle, stretched to the size: exactly for crops cut from the image
// itself, within two levels on average for those cut from a reduced copy (the
// blocks fall elsewhere on the sharp edge).
func TestConvertCrops(t *testing.T) {
	img := smooth(900, 600)
	p := Preprocess{Size: 24, Crops: Crops{N: 12, Seed: 1}}
	crops := ConvertCrops(img, p, "s.png")
	rects := p.Crops.Rects(900, 600, "s.png")
	for k, c := range crops {
		if c.Rect != rects[k] {
			t.Fatalf("crop %d at %v, want %v", k, c.Rect, rects[k])
		}
		want := Convert(imaging.Crop(img, c.Rect), Preprocess{Size: 24, Resize: ResizeStretch})
		reduced := min(c.Rect.Dx(), c.Rect.Dy()) >= 2*int(pyramidMargin)*24
		if mad := meanAbsDiff(t, c.Pixels, want); mad > 2 || !reduced && mad != 0 {
			t.Errorf("crop %d at %v (cut from a reduced copy: %v): mean absolute difference %.2f from the image's pixels there", k, c.Rect, reduced, mad)
		}
	}
}

// TestDecodeCropsJPEG checks DecodeCrops on a large JPEG: crops large
// enough for the 1/8-scale DC decode are close to those of the full
// decode, smaller ones are those of the full decode exactly, and an EXIF
// orientation places the crops in the displayed image.
func TestDecodeCropsJPEG(t *testing.T) {
	dir := t.TempDir()
	b := encodeJPEG(t, smooth(3200, 2400), 90)
	full, err := jpeg.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	path := writeImageFile(t, dir, "big.jpg", b)
	for _, tc := range []struct {
		name   string
		scale  [2]float64
		dc     bool
		maxMAD float64
	}{
		// The smallest crop, 0.3·7.68 MP, is 1518 pixels a side: 189 at 1/8.
		{"dc", [2]float64{0.3, 0.5}, true, 3},
		// 0.002·7.68 MP is 124 pixels a side: full resolution.
		{"full", [2]float64{0.002, 0.01}, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := Preprocess{Size: 96, Crops: Crops{N: 8, Scale: tc.scale, Seed: 2}}
			got, err := DecodeCrops(path, p, "big.jpg")
			if err != nil {
				t.Fatal(err)
			}
			want := ConvertCrops(full, p, "big.jpg")
			worst := 0.0
			for k := range got {
				if got[k].Rect != want[k].Rect {
					t.Fatalf("crop %d at %v, want %v", k, got[k].Rect, want[k].Rect)
				}
				worst = max(worst, meanAbsDiff(t, got[k].Pixels, want[k].Pixels))
			}
			t.Logf("worst mean absolute difference from the full decode's crops: %.2f", worst)
			if worst > tc.maxMAD || tc.dc && worst == 0 {
				t.Errorf("worst mean absolute difference %.2f: want ≤ %v, and > 0 only on the DC path (dc %v)", worst, tc.maxMAD, tc.dc)
			}
		})
	}
	// Stored on its side (orientation 6: displayed turned 90° clockwise).
	b6 := withOrientation(encodeJPEG(t, smooth(1200, 800), 90), 6)
	p := Preprocess{Size: 32, Crops: Crops{N: 5, Seed: 4}}
	got, err := DecodeCrops(writeImageFile(t, dir, "o6.jpg", b6), p, "o6.jpg")
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := jpeg.Decode(bytes.NewReader(b6))
	want := ConvertCrops(orientNRGBA(imaging.Clone(stored), 6), p, "o6.jpg")
	for k := range got {
		if got[k].Rect != want[k].Rect || !got[k].Rect.In(image.Rect(0, 0, 800, 1200)) {
			t.Fatalf("crop %d at %v, want %v in the displayed 800×1200", k, got[k].Rect, want[k].Rect)
		}
		if mad := meanAbsDiff(t, got[k].Pixels, want[k].Pixels); mad > 3 {
			t.Errorf("crop %d: mean absolute difference %.2f from the displayed image's crop", k, mad)
		}
	}
	if _, err := DecodeCrops(path, Preprocess{Size: 8}, "x"); err == nil {
		t.Error("DecodeCrops without crops: no error")
	}
	if _, err := DecodeCrops(filepath.Join(dir, "missing.jpg"), p, "x"); !errors.As(err, new(*ImageError)) {
		t.Errorf("missing file: %v", err)
	}
}

// TestDecodeCropsWallpapers compares the DC path with the full decode on
// the Debian wallpapers, when installed, at the default crops and 96
// pixels: the quality that decides when the DC path is taken.
func TestDecodeCropsWallpapers(t *testing.T) {
	var paths []string
	for _, d := range []string{"/usr/share/backgrounds", "/usr/share/wallpapers"} {
		filepath.WalkDir(d, func(p string, e os.DirEntry, err error) error {
			if err == nil && !e.IsDir() && strings.HasSuffix(strings.ToLower(p), ".jpg") {
				paths = append(paths, p)
			}
			return nil
		})
	}
	if len(paths) == 0 {
		t.Skip("no wallpapers installed (apt-get install gnome-backgrounds mate-backgrounds plasma-workspace-wallpapers)")
	}
	slices.Sort(paths)
	if testing.Short() {
		paths = paths[:1]
	}
	paths = paths[:min(len(paths), 4)]
	p := Preprocess{Size: 96, Crops: Crops{N: 12, Scale: [2]float64{0.2, 0.5}, Seed: 1}}
	for _, path := range paths {
		t.Run(filepath.Base(filepath.Dir(path))+"/"+filepath.Base(path), func(t *testing.T) {
			got, err := DecodeCrops(path, p, path)
			if err != nil {
				t.Fatal(err)
			}
			again, _ := DecodeCrops(path, p, path)
			b, _ := os.ReadFile(path)
			full, err := jpeg.Decode(bytes.NewReader(b))
			if err != nil {
				t.Skip(err)
			}
			shown := orientNRGBA(imaging.Clone(full), jpegOrientation(b))
			want := ConvertCrops(shown, p, path)
			worst := 0.0
			for k := range got {
				if !bytes.Equal(got[k].Pixels, again[k].Pixels) {
					t.Fatal("not deterministic")
				}
				worst = max(worst, meanAbsDiff(t, got[k].Pixels, want[k].Pixels))
			}
			small := slices.MinFunc(got, func(a, b Crop) int { return min(a.Rect.Dx(), a.Rect.Dy()) - min(b.Rect.Dx(), b.Rect.Dy()) })
			t.Logf("%v, smallest crop %v: worst mean absolute difference from the full decode %.2f", full.Bounds().Size(), small.Rect.Size(), worst)
			if worst > 4 {
				t.Errorf("worst mean absolute difference %.2f, want ≤ 4", worst)
			}
		})
	}
}

// TestIngestCrops ingests a folder of large photos into crops: the
// counts, the origins, the crops' pixels, the photos' splits, and the
// dataset ID's independence of the worker count and dependence on the
// crop settings.
func TestIngestCrops(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "photos")
	os.MkdirAll(filepath.Join(root, "trip"), 0o755)
	for i, size := range []image.Point{{1600, 1200}, {1200, 1600}, {2000, 900}, {640, 480}} {
		name := fmt.Sprintf("p%d.jpg", i)
		if i == 3 {
			name = filepath.Join("trip", "p3.png")
			writeImageFile(t, root, name, encodeImage(t, "png", smooth(size.X, size.Y)))
			continue
		}
		writeImageFile(t, root, name, encodeJPEG(t, smooth(size.X, size.Y), 90))
	}
	ingest := func(out string, workers int, c Crops) *IngestReport {
		t.Helper()
		rep, err := Ingest(context.Background(), IngestConfig{Inputs: []string{root}, Out: filepath.Join(dir, out),
			Preprocess: Preprocess{Size: 24, Crops: c}, Workers: workers, ValFraction: 0.5, Seed: 9, Unlabelled: true}, noProgress{})
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	c := Crops{N: 7, Seed: 9}
	rep := ingest("a", 1, c)
	if rep.Counts.Inputs != 4 || rep.Counts.Records != 28 || len(rep.Manifest.Classes) != 0 {
		t.Fatalf("counts %+v, classes %q", rep.Counts, rep.Manifest.Classes)
	}
	if got := rep.Manifest.Preprocessing.Crops; got != c.withDefaults() || rep.Manifest.Preprocessing.Resize != ResizeStretch {
		t.Errorf("manifest preprocessing %+v", rep.Manifest.Preprocessing)
	}
	if _, err := ReadIngestReport(rep.Dir); err != nil {
		t.Errorf("report: %v", err)
	}
	ds, err := Open(rep.Dir)
	if err != nil {
		t.Fatal(err)
	}
	splitOf := map[string]string{}
	for _, split := range ds.Splits() {
		recs, _ := ds.Load(split)
		for _, r := range recs {
			photo, crop, ok := strings.Cut(r.Origin, "#crop")
			if !ok || r.Label != -1 {
				t.Fatalf("record %q, label %d", r.Origin, r.Label)
			}
			if s, seen := splitOf[photo]; seen && s != split {
				t.Errorf("the crops of %s are in %s and %s", photo, s, split)
			}
			splitOf[photo] = split
			var k, w, h, x, y int
			if _, err := fmt.Sscanf(crop, "%d=%dx%d+%d+%d", &k, &w, &h, &x, &y); err != nil {
				t.Fatalf("origin %q: %v", r.Origin, err)
			}
			img, err := imaging.Open(filepath.Join(root, photo))
			if err != nil {
				t.Fatal(err)
			}
			rect := image.Rect(x, y, x+w, y+h)
			if want := c.Rects(img.Bounds().Dx(), img.Bounds().Dy(), photo)[k]; rect != want {
				t.Errorf("%q: crop %d at %v, want %v", r.Origin, k, rect, want)
			}
			want := Convert(imaging.Crop(img, rect), Preprocess{Size: 24, Resize: ResizeStretch})
			if mad := meanAbsDiff(t, r.Pixels, want); mad > 3 {
				t.Errorf("%q: mean absolute difference %.2f from the photo's pixels there", r.Origin, mad)
			}
		}
	}
	if len(splitOf) != 4 || !slices.Contains(ds.Splits(), Val) {
		t.Errorf("photos %v, splits %v", splitOf, ds.Splits())
	}
	if again := ingest("b", 3, c); again.ID != rep.ID {
		t.Error("the ID changes with the worker count")
	}
	if other := ingest("c", 2, Crops{N: 7, Seed: 10}); other.ID == rep.ID {
		t.Error("another crop seed gives the same ID")
	}
	if other := ingest("d", 2, Crops{N: 7, Seed: 9, Scale: [2]float64{0.1, 0.2}}); other.ID == rep.ID {
		t.Error("another crop scale gives the same ID")
	}
	// Without Unlabelled the folder is a labelled tree whose root images
	// are refused; with it the class names must not be given.
	if err := (IngestConfig{Inputs: []string{root}, Out: "x", Unlabelled: true, Classes: []string{"a", "b"}}).Validate(); err == nil {
		t.Error("unlabelled with class names: no error")
	}
}
