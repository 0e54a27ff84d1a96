package pipeline

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gonum.org/v1/plot/vg"
)

// decodePlot decodes a rendered plot and checks its size.
func decodePlot(t *testing.T, b []byte) image.Image {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("decoding the PNG: %v", err)
	}
	if got := img.Bounds().Size(); got != (image.Point{X: PlotWidthPx, Y: PlotHeightPx}) {
		t.Fatalf("image is %v, want %dx%d", got, PlotWidthPx, PlotHeightPx)
	}
	return img
}

func rgbaAt(img image.Image, x, y int) color.RGBA {
	return color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)
}

// near reports whether a and b differ by at most tol in every channel.
func near(a, b color.RGBA, tol int) bool {
	d := func(x, y uint8) bool { return int(x)-int(y) <= tol && int(y)-int(x) <= tol }
	return d(a.R, b.R) && d(a.G, b.G) && d(a.B, b.B)
}

// columnsOf returns the x coordinates of the columns holding at least one
// pixel within tol of c.
func columnsOf(img image.Image, c color.RGBA, tol int) []int {
	var xs []int
	b := img.Bounds()
	for x := b.Min.X; x < b.Max.X; x++ {
		for y := b.Min.Y; y < b.Max.Y; y++ {
			if near(rgbaAt(img, x, y), c, tol) {
				xs = append(xs, x)
				break
			}
		}
	}
	return xs
}

// countColor counts the pixels within tol of c.
func countColor(img image.Image, c color.RGBA, tol int) int {
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if near(rgbaAt(img, x, y), c, tol) {
				n++
			}
		}
	}
	return n
}

// runs splits sorted xs into runs of consecutive values, as [first, last].
func runs(xs []int) [][2]int {
	var r [][2]int
	for i, x := range xs {
		if i == 0 || x != xs[i-1]+1 {
			r = append(r, [2]int{x, x})
		} else {
			r[len(r)-1][1] = x
		}
	}
	return r
}

func TestBarPlotImage(t *testing.T) {
	bars := []PlotBar{
		{"relpos", "linear", 0.8, 0.02},
		{"relpos", "k-NN", 0.7, 0.03},
		{"ae-mirrored", "linear", 0.6, 0.01},
		{"ae-mirrored", "k-NN", 0.5, 0.05},
		{"random", "linear", 0.4, 0},
		{"random", "k-NN", 0.3, math.NaN()},
	}
	b, err := renderBarPlot("Probe accuracy", "top-1", bars)
	if err != nil {
		t.Fatal(err)
	}
	img := decodePlot(t, b)
	white := color.RGBA{0xff, 0xff, 0xff, 0xff}
	if n := PlotWidthPx*PlotHeightPx - countColor(img, white, 0); n < 20000 {
		t.Errorf("only %d pixels are not white", n)
	}
	// Each series' colour fills its three bars and the legend swatch: four
	// separate runs of columns, the last (the swatch) right of the bars.
	for s := range 2 {
		c := plotColor(s)
		r := runs(columnsOf(img, c, 0))
		if len(r) != 4 {
			t.Fatalf("series %d: colour in column runs %v, want 3 bars and a legend swatch", s, r)
		}
		if n := countColor(img, c, 0); n < 3*20*100 {
			t.Errorf("series %d: %d pixels of its colour, want bars of at least 20×100 px", s, n)
		}
	}
	// Bars of equal series are equally wide and ordered by group: the
	// heights follow the means, so compare the bar pixel counts.
	lin := runs(columnsOf(img, plotColor(0), 0))
	knn := runs(columnsOf(img, plotColor(1), 0))
	for g := range 3 {
		if !(lin[g][1] < knn[g][0]) {
			t.Errorf("group %d: linear bar %v not left of k-NN bar %v", g, lin[g], knn[g])
		}
		if g > 0 && !(knn[g-1][1] < lin[g][0]) {
			t.Errorf("group %d starts at %v, before group %d ends at %v", g, lin[g], g-1, knn[g-1])
		}
	}
	heights := barHeights(img, plotColor(0), lin[:3])
	if !(heights[0] > heights[1] && heights[1] > heights[2]) {
		t.Errorf("linear bar heights %v, want decreasing like the means 0.8, 0.6, 0.4", heights)
	}
	// y runs from 0 to 1, so heights are proportional to the means.
	if r := float64(heights[2]) / float64(heights[0]); math.Abs(r-0.5) > 0.02 {
		t.Errorf("bar heights %v: ratio %.3f, want 0.4/0.8", heights, r)
	}
}

// barHeights returns, for each run of columns, the number of pixels of c
// in the run's middle column.
func barHeights(img image.Image, c color.RGBA, rs [][2]int) []int {
	h := make([]int, len(rs))
	for i, r := range rs {
		x := (r[0] + r[1]) / 2
		for y := range PlotHeightPx {
			if near(rgbaAt(img, x, y), c, 0) {
				h[i]++
			}
		}
	}
	return h
}

// TestBarPlotErrorBars checks that a bar's ±Std shows as a dark line above
// the bar top, as long as the Std, and that Std 0 draws none.
func TestBarPlotErrorBars(t *testing.T) {
	// darkAbove returns the run of dark pixels directly above the bar top in
	// the bar's middle column, and the bar's height, in pixels.
	darkAbove := func(std float64) (dark, height int) {
		t.Helper()
		b, err := renderBarPlot("", "accuracy", []PlotBar{{"g", "s", 0.5, std}})
		if err != nil {
			t.Fatal(err)
		}
		img := decodePlot(t, b)
		r := runs(columnsOf(img, plotColor(0), 0))
		if len(r) != 2 {
			t.Fatalf("std %v: colour in column runs %v, want a bar and a swatch", std, r)
		}
		// The bar's top and height from a column beside the error bar.
		x := (r[0][0] + r[0][1]) / 2
		top := -1
		for y := range PlotHeightPx {
			if rgbaAt(img, r[0][0]+3, y) == plotColor(0) {
				if top < 0 {
					top = y
				}
				height++
			}
		}
		for y := top - 1; y >= 0; y-- {
			c := rgbaAt(img, x, y)
			if int(c.R)+int(c.G)+int(c.B) > 3*0x90 {
				break
			}
			dark++
		}
		return dark, height
	}
	dark, height := darkAbove(0.2)
	// The bar spans 0.5 of the axis; the upper half of the error bar 0.2.
	want := float64(height) * 0.2 / 0.5
	if math.Abs(float64(dark)-want) > 3 {
		t.Errorf("std 0.2: %d dark pixels above the bar (height %d), want about %.0f", dark, height, want)
	}
	if dark, _ := darkAbove(0); dark > 0 {
		t.Errorf("std 0: %d dark pixels above the bar, want none", dark)
	}
}

// TestBarPlotLegendOutside checks that the legend lies right of every bar,
// even when all bars reach the top of the axis.
func TestBarPlotLegendOutside(t *testing.T) {
	groups := []string{"relpos", "ae-mirrored", "ae-linear", "ae-tied", "dae-mirrored", "random", "supervised"}
	series := []string{"fashion-mnist-small linear", "fashion-mnist-small k-NN", "mnist linear", "mnist k-NN"}
	var bars []PlotBar
	for _, g := range groups {
		for _, s := range series {
			bars = append(bars, PlotBar{g, s, 1, 0})
		}
	}
	b, err := renderBarPlot("All perfect", "top-1", bars)
	if err != nil {
		t.Fatal(err)
	}
	img := decodePlot(t, b)
	for s := range series {
		r := runs(columnsOf(img, plotColor(s), 0))
		if len(r) != len(groups)+1 {
			t.Fatalf("series %d: colour in column runs %v, want %d bars and a swatch", s, r, len(groups))
		}
		lastBar := runs(columnsOf(img, plotColor(len(series)-1), 0))[len(groups)-1]
		if swatch := r[len(r)-1]; swatch[0] <= lastBar[1]+10 {
			t.Errorf("series %d: legend swatch at columns %v, not right of the last bar %v", s, swatch, lastBar)
		}
	}
}

func TestBarPlotValues(t *testing.T) {
	nan := math.NaN()
	for _, tc := range []struct {
		name string
		bars []PlotBar
		err  string // "" for success
		none bool   // the error wraps ErrNoPlotData
	}{
		{"nan mean skipped", []PlotBar{{"a", "s", 0.5, 0.1}, {"b", "s", nan, nan}}, "", false},
		{"missing series", []PlotBar{{"a", "s", 0.5, 0.1}, {"b", "t", 0.3, 0.1}}, "", false},
		{"above one", []PlotBar{{"a", "s", 1.5, 0.1}, {"b", "s", 0.3, 0}}, "", false},
		{"negative", []PlotBar{{"a", "s", -2, 0.5}, {"b", "s", 3, 0}}, "", false},
		{"all zero", []PlotBar{{"a", "s", 0, 0}}, "", false},
		{"large", []PlotBar{{"a", "s", 1200, 30}, {"b", "s", 800, 10}}, "", false},
		{"empty", nil, "no bars", true},
		{"all nan", []PlotBar{{"a", "s", nan, 0}, {"b", "s", nan, 0}}, "every mean is NaN", true},
		{"inf mean", []PlotBar{{"a", "s", 0.5, 0}, {"b", "t", math.Inf(1), 0}}, `bar 1 (group "b", series "t"): mean is +Inf`, false},
		{"negative std", []PlotBar{{"a", "s", 0.5, -0.1}}, `bar 0 (group "a", series "s"): std is -0.1`, false},
		{"inf std", []PlotBar{{"a", "s", 0.5, math.Inf(1)}}, "std is +Inf", false},
		{"duplicate", []PlotBar{{"a", "s", 0.5, 0}, {"b", "s", 0.5, 0}, {"a", "s", 0.4, 0}}, "bar 2 (group \"a\", series \"s\"): same group and series as bar 0", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := renderBarPlot(tc.name, "y", tc.bars)
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				decodePlot(t, b)
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("err = %v, want one containing %q", err, tc.err)
			}
			if errors.Is(err, ErrNoPlotData) != tc.none {
				t.Errorf("errors.Is(%v, ErrNoPlotData) = %v, want %v", err, !tc.none, tc.none)
			}
		})
	}
}

// TestBarPlotNaNLabel checks that a NaN mean leaves no bar but an "n/a"
// mark in its place, and that an absent bar leaves its place empty.
func TestBarPlotNaNLabel(t *testing.T) {
	render := func(bars []PlotBar) image.Image {
		b, err := renderBarPlot("", "", bars)
		if err != nil {
			t.Fatal(err)
		}
		return decodePlot(t, b)
	}
	full := render([]PlotBar{{"a", "s", 0.5, 0}, {"a", "t", 0.5, 0}, {"b", "s", 0.5, 0}, {"b", "t", 0.5, 0}})
	na := render([]PlotBar{{"a", "s", 0.5, 0}, {"a", "t", math.NaN(), 0}, {"b", "s", 0.5, 0}, {"b", "t", 0.5, 0}})
	absent := render([]PlotBar{{"a", "s", 0.5, 0}, {"b", "s", 0.5, 0}, {"b", "t", 0.5, 0}})
	// grey counts the grey text pixels in the columns of run r, in the rows
	// of the bars.
	grey := func(img image.Image, r [2]int) int {
		n := 0
		for x := r[0]; x <= r[1]; x++ {
			for y := range PlotHeightPx {
				if !near(rgbaAt(full, x, y), plotColor(1), 0) {
					continue
				}
				c := rgbaAt(img, x, y)
				if c.R == c.G && c.G == c.B && c.R < 0xc0 && c.R > 0x20 {
					n++
				}
			}
		}
		return n
	}
	// The place of bar (a, t) is where full has it.
	r := runs(columnsOf(full, plotColor(1), 0))
	if len(r) != 3 {
		t.Fatalf("colour runs %v, want two bars and a swatch", r)
	}
	for _, tc := range []struct {
		name     string
		img      image.Image
		wantGrey bool
	}{{"NaN", na, true}, {"absent", absent, false}} {
		if got := runs(columnsOf(tc.img, plotColor(1), 0)); len(got) != 2 || got[0] != r[1] {
			t.Errorf("%s bar: colour runs %v, want only the other bar %v and the swatch", tc.name, got, r[1])
		}
		if n := grey(tc.img, r[0]); (n >= 20) != tc.wantGrey {
			t.Errorf("%s bar: %d grey pixels in its place, want an n/a label: %v", tc.name, n, tc.wantGrey)
		}
	}
}

func TestCurvePlotImage(t *testing.T) {
	n := 200
	flat := PlotCurve{Label: "flat", X: make([]float64, n), Y: make([]float64, n)}
	rise := PlotCurve{Label: "rise", X: make([]float64, n), Y: make([]float64, n)}
	for i := range n {
		flat.X[i], flat.Y[i] = float64(i), 1
		rise.X[i], rise.Y[i] = float64(i), 1+float64(i)/float64(n)
	}
	b, err := renderCurvePlot("Loss", "step", "loss", []PlotCurve{flat, rise}, false)
	if err != nil {
		t.Fatal(err)
	}
	img := decodePlot(t, b)
	for i := range 2 {
		c := plotColor(i)
		cols := columnsOf(img, c, 16)
		// Each line spans most of the width; its colour shows in its
		// columns and the legend's.
		if len(cols) < PlotWidthPx/2 {
			t.Errorf("curve %d: colour in %d columns, want most of the %d", i, len(cols), PlotWidthPx)
		}
		if r := runs(cols); len(r) < 2 {
			t.Errorf("curve %d: colour runs %v, want the line and the legend", i, r)
		}
	}
	if countColor(img, plotColor(2), 16) > 0 {
		t.Error("a third curve's colour appears with two curves")
	}
}

func TestCurvePlotValues(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	for _, tc := range []struct {
		name   string
		curves []PlotCurve
		logY   bool
		err    string
		none   bool
	}{
		{"nan and inf points skipped", []PlotCurve{{"a", []float64{0, 1, 2, 3, 4}, []float64{1, nan, 2, inf, 3}}}, false, "", false},
		{"log skips non-positive", []PlotCurve{{"a", []float64{0, 1, 2, 3}, []float64{1, 0, -1, 0.1}}}, true, "", false},
		{"log one value", []PlotCurve{{"a", []float64{0, 1}, []float64{2, 2}}}, true, "", false},
		{"single point", []PlotCurve{{"a", []float64{3}, []float64{7}}}, false, "", false},
		{"curve without data", []PlotCurve{{"a", []float64{0, 1}, []float64{1, 2}}, {"b", nil, nil}}, false, "", false},
		{"log wide range", []PlotCurve{{"a", []float64{0, 1}, []float64{1e-6, 1e3}}}, true, "", false},
		{"empty", nil, false, "no curves", true},
		{"no points", []PlotCurve{{"a", nil, nil}}, false, "no curve has a finite point", true},
		{"log no positive", []PlotCurve{{"a", []float64{0, 1}, []float64{0, -1}}}, true, "y > 0", true},
		{"length mismatch", []PlotCurve{{"a", []float64{0}, []float64{1}}, {"b", []float64{0, 1}, []float64{1}}}, false, `curve 1 ("b"): 2 x values but 1 y values`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := renderCurvePlot(tc.name, "x", "y", tc.curves, tc.logY)
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				decodePlot(t, b)
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("err = %v, want one containing %q", err, tc.err)
			}
			if errors.Is(err, ErrNoPlotData) != tc.none {
				t.Errorf("errors.Is(%v, ErrNoPlotData) = %v, want %v", err, !tc.none, tc.none)
			}
		})
	}
}

func TestPlotLogTicks(t *testing.T) {
	labels := func(lo, hi float64) []string {
		var l []string
		for _, tk := range (plotLogTicks{}).Ticks(lo, hi) {
			if tk.Value < lo || tk.Value > hi {
				t.Errorf("[%g, %g]: tick %g outside", lo, hi, tk.Value)
			}
			if tk.Label != "" {
				l = append(l, tk.Label)
			}
		}
		return l
	}
	for _, tc := range []struct {
		lo, hi float64
		want   []string
	}{
		{0.008, 2.5, []string{"0.01", "0.02", "0.05", "0.1", "0.2", "0.5", "1", "2"}},
		{1e-6, 1e3, []string{"1e-06", "1e-05", "0.0001", "0.001", "0.01", "0.1", "1", "10", "100", "1000"}},
		{0.25, 1.5, []string{"0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9", "1"}},
		{1.1, 1.9, []string{"1.2", "1.4", "1.6", "1.8"}},
	} {
		if got := labels(tc.lo, tc.hi); !slices.Equal(got, tc.want) {
			t.Errorf("[%g, %g]: labels %q, want %q", tc.lo, tc.hi, got, tc.want)
		}
	}
}

func TestPlotLinearTicks(t *testing.T) {
	for _, tc := range []struct {
		lo, hi float64
		n      int
		want   []string
	}{
		{0, 1, 10, []string{"0.0", "0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9", "1.0"}},
		{0, 1, 6, []string{"0.0", "0.2", "0.4", "0.6", "0.8", "1.0"}},
		{0, 3000, 6, []string{"0", "500", "1000", "1500", "2000", "2500", "3000"}},
		{-0.3, 0.7, 4, []string{"-0.25", "0.00", "0.25", "0.50"}},
		{0, 2e7, 4, []string{"0", "5e+06", "1e+07", "1.5e+07", "2e+07"}},
		{40, 160, 6, []string{"40", "60", "80", "100", "120", "140", "160"}},
	} {
		var got []string
		for _, tk := range (plotLinearTicks{n: tc.n}).Ticks(tc.lo, tc.hi) {
			if tk.Value < tc.lo || tk.Value > tc.hi {
				t.Errorf("[%g, %g]: tick %g outside", tc.lo, tc.hi, tk.Value)
			}
			if tk.Label != "" {
				got = append(got, tk.Label)
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("[%g, %g] n=%d: labels %q, want %q", tc.lo, tc.hi, tc.n, got, tc.want)
		}
	}
	for _, tc := range []struct{ lo, hi, wantLo, wantHi float64 }{
		{0, 2990, 0, 3000},
		{12, 2990, 0, 3000},
		{300, 2990, 300, 3000},
		{0.013, 0.97, 0, 1},
		{0.013, 0.95, 0, 0.95},
	} {
		if lo, hi := plotNiceRange(tc.lo, tc.hi, 6); math.Abs(lo-tc.wantLo) > 1e-12 || math.Abs(hi-tc.wantHi) > 1e-12 {
			t.Errorf("plotNiceRange(%g, %g) = %g, %g, want %g, %g", tc.lo, tc.hi, lo, hi, tc.wantLo, tc.wantHi)
		}
	}
}

func TestFitText(t *testing.T) {
	style := newPlot("").Legend.TextStyle
	long := "fashion-mnist-small linear probe, layer 4, L2 chosen on validation"
	w := style.Width("fashion-mnist-small")
	got := fitText(style, long, w)
	if !strings.HasSuffix(got, "…") || style.Width(got) > w || !strings.HasPrefix(long, strings.TrimSuffix(got, "…")) {
		t.Errorf("fitText = %q (width %v), want a prefix of %q with … within %v", got, style.Width(got), long, w)
	}
	if got := fitText(style, "short", w); got != "short" {
		t.Errorf("fitText(short) = %q", got)
	}
	if got := fitText(style, long, vg.Points(1)); got != "…" {
		t.Errorf("fitText into 1pt = %q, want …", got)
	}
}

// TestPlotDeterministic checks that the same input gives the same bytes,
// through the writers too.
func TestPlotDeterministic(t *testing.T) {
	bars, curves := examplePlotData()
	dir := t.TempDir()
	var first [2][]byte
	for i := range 2 {
		bp := filepath.Join(dir, fmt.Sprintf("bars%d.png", i))
		cp := filepath.Join(dir, fmt.Sprintf("curves%d.png", i))
		if err := WriteBarPlot(bp, "Linear probe and k-NN top-1", "top-1 accuracy", bars); err != nil {
			t.Fatal(err)
		}
		if err := WriteCurvePlot(cp, "Pretext loss", "step", "loss", curves, true); err != nil {
			t.Fatal(err)
		}
		for j, p := range []string{bp, cp} {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				first[j] = b
			} else if !bytes.Equal(b, first[j]) {
				t.Errorf("%s differs from the first rendering of the same input", p)
			}
		}
	}
}

// TestPlotReplace checks that a plot replaces an existing file, that a
// failure leaves it as it was, and that no temporary file is left behind.
func TestPlotReplace(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "plot.png")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := WriteBarPlot(path, "", "", nil)
	if !errors.Is(err, ErrNoPlotData) || !strings.Contains(err.Error(), path) {
		t.Fatalf("err = %v, want ErrNoPlotData naming %s", err, path)
	}
	err = WriteCurvePlot(path, "", "", "", []PlotCurve{{"a", []float64{1}, nil}}, false)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("err = %v, want an error naming %s", err, path)
	}
	if b, _ := os.ReadFile(path); string(b) != "old" {
		t.Fatalf("a failed plot changed the file to %q", b)
	}
	if err := WriteBarPlot(path, "t", "y", []PlotBar{{"a", "s", 0.5, 0.1}}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	decodePlot(t, b)
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("directory holds %v, want only plot.png", entries)
	}
	missing := filepath.Join(dir, "no-such-dir", "plot.png")
	if err := WriteCurvePlot(missing, "", "", "", []PlotCurve{{"a", []float64{1, 2}, []float64{1, 2}}}, false); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("err = %v, want ErrNotExist naming %s", err, missing)
	}
}

// examplePlotData returns a realistic comparison: 7 pretexts × 4 probe
// series of accuracies, and 6 loss curves of 300 logged steps (three
// pretexts with different losses, two seeds each).
func examplePlotData() ([]PlotBar, []PlotCurve) {
	rng := rand.New(rand.NewPCG(1, 2))
	groups := []string{"relpos", "ae-mirrored", "ae-linear", "ae-tied", "dae-mirrored", "random", "supervised"}
	base := []float64{0.78, 0.74, 0.69, 0.71, 0.76, 0.62, 0.91}
	series := []string{"fashion-mnist-small linear", "fashion-mnist-small k-NN", "mnist linear", "mnist k-NN"}
	shift := []float64{0, -0.03, 0.12, 0.10}
	var bars []PlotBar
	for g, name := range groups {
		for s, sname := range series {
			bars = append(bars, PlotBar{name, sname, min(0.99, base[g]+shift[s]+0.02*rng.NormFloat64()), 0.004 + 0.02*rng.Float64()})
		}
	}
	var curves []PlotCurve
	for _, pc := range []struct {
		name        string
		start, stop float64
	}{{"relpos", 2.08, 1.05}, {"ae-mirrored", 0.09, 0.012}, {"dae-mirrored", 0.11, 0.02}} {
		for seed := 1; seed <= 2; seed++ {
			c := PlotCurve{Label: fmt.Sprintf("%s seed %d", pc.name, seed), X: make([]float64, 300), Y: make([]float64, 300)}
			for i := range 300 {
				f := math.Exp(-float64(i) / (60 + 10*float64(seed)))
				c.X[i] = float64(10 * i)
				c.Y[i] = (pc.stop + (pc.start-pc.stop)*f) * math.Exp(0.04*rng.NormFloat64())
			}
			curves = append(curves, c)
		}
	}
	return bars, curves
}

// TestPlotExample renders the realistic comparison. With
// PATCHWISE_PLOT_DIR set it writes plot-bars.png and plot-curves.png
// there, for looking at.
func TestPlotExample(t *testing.T) {
	dir := os.Getenv("PATCHWISE_PLOT_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	bars, curves := examplePlotData()
	bp, cp := filepath.Join(dir, "plot-bars.png"), filepath.Join(dir, "plot-curves.png")
	if err := WriteBarPlot(bp, "Linear probe and k-NN top-1 (mean ± std over 3 seeds)", "top-1 accuracy", bars); err != nil {
		t.Fatal(err)
	}
	if err := WriteCurvePlot(cp, "Pretext loss", "step", "training loss", curves, true); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{bp, cp} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		img := decodePlot(t, b)
		for i := range 4 {
			if countColor(img, plotColor(i), 0) == 0 {
				t.Errorf("%s: no pixel of colour %d", p, i)
			}
		}
	}
}

func ExampleWriteBarPlot() {
	path := filepath.Join(os.TempDir(), "patchwise-example-bars.png")
	defer os.Remove(path)
	err := WriteBarPlot(path, "Linear probe top-1", "accuracy", []PlotBar{
		{Group: "relpos", Series: "fashion-mnist", Mean: 0.81, Std: 0.01},
		{Group: "ae-mirrored", Series: "fashion-mnist", Mean: 0.77, Std: 0.02},
		{Group: "random", Series: "fashion-mnist", Mean: 0.68, Std: 0.01},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	f, err := os.Open(path)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer f.Close()
	cfg, err := png.DecodeConfig(f)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%d×%d PNG\n", cfg.Width, cfg.Height)
	// Output: 1000×600 PNG
}
