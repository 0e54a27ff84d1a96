package pipeline

import (
	"errors"
	"math"
	"path/filepath"
	"strings"
	"testing"
)

func TestPointPlot(t *testing.T) {
	nan := math.NaN()
	pts := []PlotPoint{
		{Group: "relpos", Series: "fm", Value: 1.4, Lo: -0.3, Hi: 3.1, Lo2: 0.5, Hi2: 2.3},
		{Group: "relpos", Series: "mnist", Value: 1.1, Lo: 0.2, Hi: 2.0, Lo2: nan, Hi2: nan},
		{Group: "ae", Series: "fm", Value: -1.5, Lo: nan, Hi: nan, Lo2: nan, Hi2: nan},
		{Group: "ae", Series: "mnist", Value: nan, Lo: nan, Hi: nan, Lo2: nan, Hi2: nan},
	}
	png, err := renderPointPlot("Difference", "points", pts, PointPlotStyle{Main: "seeds", Second: "images", Zero: true})
	if err != nil {
		t.Fatal(err)
	}
	img := decodePlot(t, png)
	// Both series' colours are drawn.
	for s := range 2 {
		if n := countColor(img, plotColor(s), 10); n < 50 {
			t.Errorf("series %d: %d pixels of its colour", s, n)
		}
	}
	path := filepath.Join(t.TempDir(), "p.png")
	if err := WritePointPlot(path, "t", "x", pts, PointPlotStyle{}); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		pts  []PlotPoint
		want string
	}{
		"none":     {[]PlotPoint{{Group: "a", Series: "b", Value: nan, Lo: nan, Hi: nan, Lo2: nan, Hi2: nan}}, "nothing to plot"},
		"infinite": {[]PlotPoint{{Group: "a", Series: "b", Value: math.Inf(1), Lo: nan, Hi: nan, Lo2: nan, Hi2: nan}}, "not a finite value"},
		"outside":  {[]PlotPoint{{Group: "a", Series: "b", Value: 5, Lo: 6, Hi: 7, Lo2: nan, Hi2: nan}}, "outside its interval"},
		"twice":    {[]PlotPoint{pts[0], pts[0]}, "same group and series as point 0"},
	} {
		_, err := renderPointPlot("t", "x", tc.pts, PointPlotStyle{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", name, err, tc.want)
		}
		if name == "none" && !errors.Is(err, ErrNoPlotData) {
			t.Errorf("none: %v does not wrap ErrNoPlotData", err)
		}
	}
}

func TestLinePlotOptions(t *testing.T) {
	curves := []PlotCurve{{Label: "a", X: []float64{1, 10, 100}, Y: []float64{40, 60, 80}}, {Label: "b", X: []float64{1, 10, 100}, Y: []float64{45, 58, 85}}}
	png, err := renderLines("low-shot", "% labels", "top-1", curves, LineOptions{LogX: true, Dots: true})
	if err != nil {
		t.Fatal(err)
	}
	decodePlot(t, png)
	if _, err := renderLines("t", "x", "y", curves, LineOptions{XTicks: []float64{1, 2}, XLabels: []string{"one"}}); err == nil {
		t.Error("two ticks with one label: no error")
	}
	png, err = renderLines("layers", "block", "top-1", []PlotCurve{{Label: "a", X: []float64{1, 2, 3}, Y: []float64{0.9, 0.8, 0.7}}},
		LineOptions{XTicks: []float64{1, 2, 3}, XLabels: []string{"b1", "b2", "b3"}})
	if err != nil {
		t.Fatal(err)
	}
	decodePlot(t, png)
	if err := WriteLinePlot(filepath.Join(t.TempDir(), "l.png"), "t", "x", "y", []PlotCurve{{Label: "z", X: []float64{-1}, Y: []float64{1}}}, LineOptions{LogX: true}); !errors.Is(err, ErrNoPlotData) {
		t.Errorf("log x with no positive x: %v", err)
	}
}
