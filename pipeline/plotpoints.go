package pipeline

import (
	"fmt"
	"image/color"
	"io"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/patchwise-ml/patchwise/internal/fsutil"
)

// PlotPoint is one estimate of a dot plot, with up to two intervals.
type PlotPoint struct {
	// Group is the row the point belongs to, e.g. the pretext; rows run
	// down the y axis in the order they first appear.
	Group string
	// Series names the point within its row, e.g. the dataset; each
	// series has one colour and legend entry.
	Series string
	// Value is the estimate; NaN marks a missing one (labelled "n/a").
	Value float64
	// Lo and Hi bound the main interval, drawn as a thick bar; NaN draws
	// none.
	Lo, Hi float64
	// Lo2 and Hi2 bound a second interval, drawn as a thin bar just below
	// the point; NaN draws none.
	Lo2, Hi2 float64
}

// PointPlotStyle names a dot plot's intervals in its legend and says
// whether to mark x = 0.
type PointPlotStyle struct {
	Main, Second string // legend labels of the thick and thin bars; "" leaves them out
	Zero         bool   // draw a vertical line at x = 0
}

// WritePointPlot writes a dot plot as a PNG image of PlotWidthPx ×
// PlotHeightPx pixels to path, replacing any file there atomically: one
// row per group down the y axis, the series of a row side by side within
// it, each point a dot with its intervals as horizontal bars. The x axis
// covers the points and their intervals (and 0 with style.Zero), padded by
// 5 %, not from 0: differences of a point are visible.
//
// It returns an error wrapping ErrNoPlotData when no point has a finite
// Value, and an error naming the point for an infinite value or bound, a
// bound on the wrong side of its value, or a (Group, Series) pair given
// twice.
func WritePointPlot(path, title, xlabel string, points []PlotPoint, style PointPlotStyle) error {
	png, err := renderPointPlot(title, xlabel, points, style)
	if err == nil {
		err = fsutil.Replace(path, func(w io.Writer) error { _, err := w.Write(png); return err })
	}
	if err != nil {
		return fmt.Errorf("pipeline: point plot %q: %w", path, err)
	}
	return nil
}

// plotDot is one point as plotDots draws it.
type plotDot struct {
	group, series           int
	value, lo, hi, lo2, hi2 float64
}

// plotDots draws the points of a dot plot: row g is centred on
// y = rows−1−g, its series spread over plotGroupWidth of the unit.
type plotDots struct {
	dots          []plotDot
	rows, nSeries int
	zero          bool
}

var (
	plotDotRadius = vg.Points(4.5)
	plotMainWidth = vg.Points(3.5)
	plotThinWidth = vg.Points(1.2)
	plotZeroStyle = draw.LineStyle{Color: color.Gray{Y: 0x60}, Width: vg.Points(1), Dashes: []vg.Length{vg.Points(4), vg.Points(3)}}
)

// y returns the centre of a dot's row slot.
func (d *plotDots) y(dot plotDot) float64 {
	row := float64(d.rows - 1 - dot.group)
	if d.nSeries == 1 {
		return row
	}
	step := plotGroupWidth / float64(d.nSeries)
	return row + plotGroupWidth/2 - step/2 - float64(dot.series)*step
}

// Plot implements plot.Plotter.
func (d *plotDots) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	if d.zero && p.X.Min <= 0 && p.X.Max >= 0 {
		x := trX(0)
		c.StrokeLine2(plotZeroStyle, x, c.Min.Y, x, c.Max.Y)
	}
	na := text.Style{Color: color.Gray{Y: 0x70}, Font: font.From(plotSans, 9), XAlign: draw.XLeft, YAlign: draw.YCenter, Handler: p.TextHandler}
	slot := trY(1) - trY(0)
	gap := min(vg.Points(5), slot/vg.Length(2*max(d.nSeries, 1))*0.6)
	for _, dot := range d.dots {
		col := plotColor(dot.series)
		y := trY(d.y(dot))
		if math.IsNaN(dot.value) {
			c.FillText(na, vg.Point{X: c.Min.X + vg.Points(4), Y: y}, "n/a")
			continue
		}
		if !math.IsNaN(dot.lo) && !math.IsNaN(dot.hi) {
			c.StrokeLines(draw.LineStyle{Color: col, Width: plotMainWidth}, c.ClipLinesX([]vg.Point{{X: trX(dot.lo), Y: y}, {X: trX(dot.hi), Y: y}})...)
		}
		if !math.IsNaN(dot.lo2) && !math.IsNaN(dot.hi2) {
			st := draw.LineStyle{Color: darker(col), Width: plotThinWidth}
			y2 := y - gap
			c.StrokeLines(st, c.ClipLinesX([]vg.Point{{X: trX(dot.lo2), Y: y2}, {X: trX(dot.hi2), Y: y2}})...)
			for _, x := range []float64{dot.lo2, dot.hi2} {
				if xx := trX(x); xx >= c.Min.X && xx <= c.Max.X {
					c.StrokeLine2(st, xx, y2-vg.Points(2.5), xx, y2+vg.Points(2.5))
				}
			}
		}
		x := trX(dot.value)
		if x >= c.Min.X && x <= c.Max.X {
			c.DrawGlyph(draw.GlyphStyle{Color: col, Radius: plotDotRadius, Shape: draw.CircleGlyph{}}, vg.Point{X: x, Y: y})
			c.DrawGlyph(draw.GlyphStyle{Color: color.Gray{Y: 0x20}, Radius: plotDotRadius, Shape: draw.RingGlyph{}}, vg.Point{X: x, Y: y})
		}
	}
}

// darker returns c blended 45 % towards black.
func darker(c color.RGBA) color.RGBA {
	f := func(v uint8) uint8 { return uint8(float64(v)*0.55 + 0.5) }
	return color.RGBA{f(c.R), f(c.G), f(c.B), 0xff}
}

// plotDotThumb is the legend thumbnail of a series: its dot.
type plotDotThumb color.RGBA

// Thumbnail implements plot.Thumbnailer.
func (t plotDotThumb) Thumbnail(c *draw.Canvas) {
	pt := vg.Point{X: (c.Min.X + c.Max.X) / 2, Y: (c.Min.Y + c.Max.Y) / 2}
	c.DrawGlyph(draw.GlyphStyle{Color: color.RGBA(t), Radius: plotDotRadius, Shape: draw.CircleGlyph{}}, pt)
	c.DrawGlyph(draw.GlyphStyle{Color: color.Gray{Y: 0x20}, Radius: plotDotRadius, Shape: draw.RingGlyph{}}, pt)
}

// plotBarThumb is the legend thumbnail of an interval: a grey bar.
type plotBarThumb vg.Length

// Thumbnail implements plot.Thumbnailer.
func (t plotBarThumb) Thumbnail(c *draw.Canvas) {
	y := (c.Min.Y + c.Max.Y) / 2
	c.StrokeLine2(draw.LineStyle{Color: color.Gray{Y: 0x60}, Width: vg.Length(t)}, c.Min.X, y, c.Max.X, y)
}

func renderPointPlot(title, xlabel string, points []PlotPoint, style PointPlotStyle) ([]byte, error) {
	var groups, series []string
	groupIdx, seriesIdx := map[string]int{}, map[string]int{}
	seen := map[[2]int]int{}
	var dots []plotDot
	lo, hi := math.Inf(1), math.Inf(-1)
	for i, pt := range points {
		where := func() string { return fmt.Sprintf("point %d (group %q, series %q)", i, pt.Group, pt.Series) }
		for _, v := range []float64{pt.Value, pt.Lo, pt.Hi, pt.Lo2, pt.Hi2} {
			if math.IsInf(v, 0) {
				return nil, fmt.Errorf("%s: %v is not a finite value", where(), v)
			}
		}
		if !math.IsNaN(pt.Value) && (pt.Lo > pt.Value || pt.Hi < pt.Value || pt.Lo2 > pt.Value || pt.Hi2 < pt.Value) {
			return nil, fmt.Errorf("%s: value %v outside its interval [%v, %v] or [%v, %v]", where(), pt.Value, pt.Lo, pt.Hi, pt.Lo2, pt.Hi2)
		}
		g, ok := groupIdx[pt.Group]
		if !ok {
			g = len(groups)
			groupIdx[pt.Group] = g
			groups = append(groups, pt.Group)
		}
		s, ok := seriesIdx[pt.Series]
		if !ok {
			s = len(series)
			seriesIdx[pt.Series] = s
			series = append(series, pt.Series)
		}
		if j, dup := seen[[2]int{g, s}]; dup {
			return nil, fmt.Errorf("%s: same group and series as point %d", where(), j)
		}
		seen[[2]int{g, s}] = i
		dots = append(dots, plotDot{group: g, series: s, value: pt.Value, lo: pt.Lo, hi: pt.Hi, lo2: pt.Lo2, hi2: pt.Hi2})
		if math.IsNaN(pt.Value) {
			continue
		}
		for _, v := range []float64{pt.Value, pt.Lo, pt.Hi, pt.Lo2, pt.Hi2} {
			if !math.IsNaN(v) {
				lo, hi = min(lo, v), max(hi, v)
			}
		}
	}
	if math.IsInf(lo, 1) {
		return nil, fmt.Errorf("%w: no point has a value", ErrNoPlotData)
	}
	if style.Zero {
		lo, hi = min(lo, 0), max(hi, 0)
	}
	if hi == lo {
		lo, hi = lo-0.5*math.Max(math.Abs(lo), 0.01), hi+0.5*math.Max(math.Abs(hi), 0.01)
	}
	pad := 0.05 * (hi - lo)
	p := newPlot(title)
	p.X.Label.Text = xlabel
	p.X.Min, p.X.Max = plotNiceRange(lo-pad, hi+pad, plotBarTicks)
	p.X.Tick.Marker = plotLinearTicks{n: plotBarTicks}
	p.Y.Min, p.Y.Max = -0.5, float64(len(groups))-0.5
	rev := make([]string, len(groups))
	for i, g := range groups {
		rev[len(groups)-1-i] = g
	}
	p.NominalY(rev...)
	p.X.Padding, p.Y.Padding = 0, 0
	grid := plotter.NewGrid()
	grid.Horizontal.Color = nil
	grid.Vertical = plotGridStyle
	p.Add(grid, &plotDots{dots: dots, rows: len(groups), nSeries: len(series), zero: style.Zero})

	var entries []plotEntry
	for s, name := range series {
		entries = append(entries, plotEntry{label: name, thumb: plotDotThumb(plotColor(s))})
	}
	if style.Main != "" {
		entries = append(entries, plotEntry{label: style.Main, thumb: plotBarThumb(plotMainWidth)})
	}
	if style.Second != "" {
		entries = append(entries, plotEntry{label: style.Second, thumb: plotBarThumb(plotThinWidth)})
	}
	return renderPlot(p, entries, nil)
}
