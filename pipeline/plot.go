package pipeline

import (
	"bytes"
	"errors"
	"fmt"
	"image/color"
	"io"
	"math"
	"strconv"

	xfont "golang.org/x/image/font"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/patchwise-ml/patchwise/internal/fsutil"
)

// The comparison report's plots are PNG images of PlotWidthPx × PlotHeightPx
// pixels at 96 dots per inch (750 × 450 points): the title on top, the axes
// on the left and the legend in a column outside the axes on the right, so
// that it never hides data.
const (
	PlotWidthPx  = 1000
	PlotHeightPx = 600
)

// ErrNoPlotData is wrapped by the errors of WriteBarPlot and WriteCurvePlot
// when the input holds nothing that can be drawn: no bars or curves, only
// NaN means, or no finite point (with a log axis: no point with y > 0).
var ErrNoPlotData = errors.New("nothing to plot")

// PlotBar is one bar of a grouped bar chart: the mean and standard deviation
// (over seeds) of a value.
type PlotBar struct {
	// Group is the x-axis group the bar belongs to, e.g. the pretext "relpos".
	Group string
	// Series names the bar within its group, e.g. "fashion-mnist-small
	// linear"; each series has one colour and one legend entry.
	Series string
	// Mean is the bar's height; NaN marks a value that is missing (the bar's
	// place is labelled "n/a").
	Mean float64
	// Std is drawn as an error bar from Mean−Std to Mean+Std; zero or NaN
	// draws none.
	Std float64
}

// PlotCurve is one line of a line plot, e.g. the pretext loss of one pretext
// and seed against steps.
type PlotCurve struct {
	Label string
	X, Y  []float64 // the points (X[i], Y[i]), drawn in this order
}

// Plot geometry and styles, in points (1/72 inch).
var (
	plotWidth  = vg.Length(PlotWidthPx) * vg.Inch / vgimg.DefaultDPI
	plotHeight = vg.Length(PlotHeightPx) * vg.Inch / vgimg.DefaultDPI

	plotMargin       = vg.Points(10)
	plotLegendGap    = vg.Points(14) // between the axes and the legend
	plotLegendPad    = vg.Points(4)  // between legend entries
	plotLegendThumb  = vg.Points(18)
	plotLegendColGap = vg.Points(12)
	// plotLegendMaxWidth is the widest the legend may get; longer labels
	// are shortened with an ellipsis.
	plotLegendMaxWidth = plotWidth * 2 / 5

	plotSans = font.Font{Typeface: "Liberation", Variant: "Sans"}
	plotBold = font.Font{Typeface: "Liberation", Variant: "Sans", Weight: xfont.WeightBold}

	plotGridStyle = draw.LineStyle{Color: color.Gray{Y: 0xd8}, Width: vg.Points(0.6)}
	plotErrStyle  = draw.LineStyle{Color: color.Gray{Y: 0x20}, Width: vg.Points(1.2)}
)

// plotPalette is Tableau's ten-colour palette: distinct, medium-light hues
// that read well on white and under black error bars.
var plotPalette = []color.RGBA{
	{0x4e, 0x79, 0xa7, 0xff}, // blue
	{0xf2, 0x8e, 0x2b, 0xff}, // orange
	{0xe1, 0x57, 0x59, 0xff}, // red
	{0x76, 0xb7, 0xb2, 0xff}, // teal
	{0x59, 0xa1, 0x4f, 0xff}, // green
	{0xed, 0xc9, 0x48, 0xff}, // yellow
	{0xb0, 0x7a, 0xa1, 0xff}, // purple
	{0xff, 0x9d, 0xa7, 0xff}, // pink
	{0x9c, 0x75, 0x5f, 0xff}, // brown
	{0xba, 0xb0, 0xac, 0xff}, // grey
}

// plotDashes are the line patterns of curves: solid for the first
// len(plotPalette) curves, then dashed ones.
var plotDashes = [][]vg.Length{
	nil,
	{vg.Points(7), vg.Points(3)},
	{vg.Points(2), vg.Points(2)},
	{vg.Points(7), vg.Points(2), vg.Points(2), vg.Points(2)},
}

// plotColor returns the colour of series i: the palette's colours in turn,
// then, for each further round through the palette, lighter versions
// (blended 40 % towards white).
func plotColor(i int) color.RGBA {
	c := plotPalette[i%len(plotPalette)]
	if i/len(plotPalette)%2 == 1 {
		mix := func(v uint8) uint8 { return uint8(float64(v) + 0.4*float64(0xff-v) + 0.5) }
		c = color.RGBA{mix(c.R), mix(c.G), mix(c.B), 0xff}
	}
	return c
}

// WriteBarPlot writes a grouped bar chart with error bars (±Std) as a PNG
// image of PlotWidthPx × PlotHeightPx pixels to path, replacing any file
// there atomically (fsutil.Replace): a failure leaves path as it was.
//
// Groups are placed along x in the order they first appear in bars, series
// within each group in the order they first appear, one colour and legend
// entry per series. A group that lacks a series leaves that bar's place
// empty; a bar with a NaN Mean is labelled "n/a". The y axis runs from 0 to
// 1 when every Mean lies in [0, 1] (further only where an error bar reaches
// past 1), otherwise over the range of the bars, their error bars and 0.
// Group labels are turned when they would overlap.
//
// It returns an error wrapping ErrNoPlotData when bars is empty or every
// Mean is NaN, and an error naming the bar for an infinite Mean, a negative
// or infinite Std, or a (Group, Series) pair given twice.
func WriteBarPlot(path, title, ylabel string, bars []PlotBar) error {
	png, err := renderBarPlot(title, ylabel, bars)
	if err == nil {
		err = fsutil.Replace(path, func(w io.Writer) error { _, err := w.Write(png); return err })
	}
	if err != nil {
		return fmt.Errorf("pipeline: bar plot %q: %w", path, err)
	}
	return nil
}

// WriteCurvePlot writes a line plot, one line per curve with its Label in
// the legend, as a PNG image of PlotWidthPx × PlotHeightPx pixels to path,
// replacing any file there atomically (fsutil.Replace): a failure leaves path
// as it was. Curves take the palette's colours in turn, solid lines for the
// first ten, dashed ones after.
//
// With logY the y axis is logarithmic. Points with a NaN or infinite
// coordinate, and with logY points whose Y is zero or negative, are left
// out and break the line there; a point left alone between such gaps is
// drawn as a dot. A curve with no point left keeps its legend entry, marked
// "(no data)".
//
// It returns an error wrapping ErrNoPlotData when curves is empty or no
// curve has a point to draw, and an error naming the curve when its X and Y
// differ in length.
func WriteCurvePlot(path, title, xlabel, ylabel string, curves []PlotCurve, logY bool) error {
	png, err := renderCurvePlot(title, xlabel, ylabel, curves, logY)
	if err == nil {
		err = fsutil.Replace(path, func(w io.Writer) error { _, err := w.Write(png); return err })
	}
	if err != nil {
		return fmt.Errorf("pipeline: curve plot %q: %w", path, err)
	}
	return nil
}

// plotBar is one bar as plotBars draws it.
type plotBar struct {
	group, series int
	mean, std     float64
}

// plotBars draws grouped bars: group g is centred on x = g and its bars
// share plotGroupWidth of the unit between groups.
type plotBars struct {
	bars    []plotBar
	nSeries int
}

// About how many intervals the labelled ticks divide an axis into: the y
// axis of bar charts (so that accuracies in [0, 1] read to 0.1), and the
// axes of line plots.
const (
	plotBarTicks   = 10
	plotCurveTicks = 6
)

// plotGroupWidth is the fraction of the distance between groups that a
// group's bars fill.
const plotGroupWidth = 0.8

// Plot implements plot.Plotter.
func (b *plotBars) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	w := plotGroupWidth / float64(b.nSeries)
	span := func(bar plotBar) (left, right vg.Length) {
		x0 := float64(bar.group) - plotGroupWidth/2 + float64(bar.series)*w
		left, right = trX(x0), trX(x0+w)
		// A hairline of background between neighbouring bars.
		gap := min(vg.Points(0.75), (right-left)/8)
		return left + gap, right - gap
	}
	base := trY(0)
	na := text.Style{
		Color:    color.Gray{Y: 0x70},
		Font:     font.From(plotSans, 9),
		XAlign:   draw.XLeft,
		YAlign:   draw.YCenter,
		Rotation: math.Pi / 2,
		Handler:  p.TextHandler,
	}
	for _, bar := range b.bars {
		if math.IsNaN(bar.mean) {
			continue
		}
		left, right := span(bar)
		top := trY(bar.mean)
		pts := []vg.Point{{X: left, Y: base}, {X: left, Y: top}, {X: right, Y: top}, {X: right, Y: base}}
		c.FillPolygon(plotColor(bar.series), c.ClipPolygonY(pts))
	}
	// Labels and error bars after all bars, so that no neighbouring bar
	// covers them.
	for _, bar := range b.bars {
		if math.IsNaN(bar.mean) {
			left, right := span(bar)
			c.FillText(na, vg.Point{X: (left + right) / 2, Y: base + vg.Points(3)}, "n/a")
		}
	}
	for _, bar := range b.bars {
		if math.IsNaN(bar.mean) || math.IsNaN(bar.std) || bar.std == 0 {
			continue
		}
		left, right := span(bar)
		x := (left + right) / 2
		lo, hi := trY(bar.mean-bar.std), trY(bar.mean+bar.std)
		c.StrokeLines(plotErrStyle, c.ClipLinesY([]vg.Point{{X: x, Y: lo}, {X: x, Y: hi}})...)
		capw := min(vg.Points(8), (right-left)*0.6)
		for _, y := range []vg.Length{lo, hi} {
			if y >= c.Min.Y && y <= c.Max.Y {
				c.StrokeLine2(plotErrStyle, x-capw/2, y, x+capw/2, y)
			}
		}
	}
}

// plotSwatch is the legend thumbnail of a bar series: a filled square.
type plotSwatch color.RGBA

// Thumbnail implements plot.Thumbnailer.
func (s plotSwatch) Thumbnail(c *draw.Canvas) {
	side := min(c.Max.X-c.Min.X, c.Max.Y-c.Min.Y)
	x := c.Min.X + (c.Max.X-c.Min.X-side)/2
	y := c.Min.Y + (c.Max.Y-c.Min.Y-side)/2
	c.FillPolygon(color.RGBA(s), []vg.Point{{X: x, Y: y}, {X: x, Y: y + side}, {X: x + side, Y: y + side}, {X: x + side, Y: y}})
}

// plotEntry is one legend entry.
type plotEntry struct {
	label string
	thumb plot.Thumbnailer
}

func renderBarPlot(title, ylabel string, bars []PlotBar) ([]byte, error) {
	if len(bars) == 0 {
		return nil, fmt.Errorf("%w: no bars", ErrNoPlotData)
	}
	var groups, series []string
	groupIdx, seriesIdx := map[string]int{}, map[string]int{}
	seen := map[[2]int]int{}
	drawn := make([]plotBar, 0, len(bars))
	lo, hi := 0.0, 0.0
	unit := true // every mean lies in [0, 1]
	finite := 0
	for i, b := range bars {
		where := func() string { return fmt.Sprintf("bar %d (group %q, series %q)", i, b.Group, b.Series) }
		if math.IsInf(b.Mean, 0) {
			return nil, fmt.Errorf("%s: mean is %v", where(), b.Mean)
		}
		if b.Std < 0 || math.IsInf(b.Std, 0) {
			return nil, fmt.Errorf("%s: std is %v, want a finite value ≥ 0", where(), b.Std)
		}
		g, ok := groupIdx[b.Group]
		if !ok {
			g = len(groups)
			groupIdx[b.Group] = g
			groups = append(groups, b.Group)
		}
		s, ok := seriesIdx[b.Series]
		if !ok {
			s = len(series)
			seriesIdx[b.Series] = s
			series = append(series, b.Series)
		}
		if j, dup := seen[[2]int{g, s}]; dup {
			return nil, fmt.Errorf("%s: same group and series as bar %d", where(), j)
		}
		seen[[2]int{g, s}] = i
		drawn = append(drawn, plotBar{group: g, series: s, mean: b.Mean, std: b.Std})
		if math.IsNaN(b.Mean) {
			continue
		}
		finite++
		std := b.Std
		if math.IsNaN(std) {
			std = 0
		}
		lo = min(lo, b.Mean-std, b.Mean)
		hi = max(hi, b.Mean+std, b.Mean)
		unit = unit && b.Mean >= 0 && b.Mean <= 1
	}
	if finite == 0 {
		return nil, fmt.Errorf("%w: every mean is NaN", ErrNoPlotData)
	}

	p := newPlot(title)
	p.Y.Label.Text = ylabel
	switch {
	case unit:
		p.Y.Min, p.Y.Max = 0, max(1, hi)
	default:
		if hi == lo {
			hi = lo + 1
		}
		pad := 0.05 * (hi - lo)
		p.Y.Min, p.Y.Max = lo, hi+pad
		if lo < 0 {
			p.Y.Min = lo - pad
		}
		p.Y.Min, p.Y.Max = plotNiceRange(p.Y.Min, p.Y.Max, plotBarTicks)
	}
	p.Y.Tick.Marker = plotLinearTicks{n: plotBarTicks}
	p.X.Min, p.X.Max = -0.5, float64(len(groups))-0.5
	p.NominalX(groups...)
	p.X.LineStyle = p.Y.LineStyle
	p.X.Padding, p.Y.Padding = 0, 0
	grid := plotter.NewGrid()
	grid.Vertical.Color = nil
	grid.Horizontal = plotGridStyle
	p.Add(grid, &plotBars{bars: drawn, nSeries: len(series)})

	entries := make([]plotEntry, len(series))
	for s, name := range series {
		entries[s] = plotEntry{label: name, thumb: plotSwatch(plotColor(s))}
	}
	return renderPlot(p, entries, func(dataWidth vg.Length) vg.Length { return turnGroupLabels(p, groups, dataWidth) })
}

// turnGroupLabels turns the x axis's group labels when they do not fit
// side by side in dataWidth: by 30° when the labels' lines then clear each
// other, by 90° otherwise. It returns how far the first label reaches left
// of the data area.
func turnGroupLabels(p *plot.Plot, groups []string, dataWidth vg.Length) vg.Length {
	slot := dataWidth / vg.Length(len(groups))
	var widest vg.Length
	for _, g := range groups {
		widest = max(widest, p.X.Tick.Label.Width(g))
	}
	lineHeight := p.X.Tick.Label.Height("Mg")
	switch {
	case widest <= slot*0.9:
		return p.X.Tick.Label.Width(groups[0])/2 - slot/2
	case slot/2 >= lineHeight*1.3: // neighbours at 30° sit slot·sin 30° apart
		p.X.Tick.Label.Rotation = math.Pi / 6
		p.X.Tick.Label.XAlign = draw.XRight
		p.X.Tick.Label.YAlign = draw.YTop
		// The label ends at its tick, rising to the right.
		return p.X.Tick.Label.Width(groups[0])*vg.Length(math.Cos(math.Pi/6)) - slot/2
	default:
		p.X.Tick.Label.Rotation = math.Pi / 2
		p.X.Tick.Label.XAlign = draw.XRight
		p.X.Tick.Label.YAlign = draw.YCenter
		return lineHeight/2 - slot/2
	}
}

func renderCurvePlot(title, xlabel, ylabel string, curves []PlotCurve, logY bool) ([]byte, error) {
	return renderLines(title, xlabel, ylabel, curves, LineOptions{LogY: logY})
}

// LineOptions are the axes and markers of WriteLinePlot.
type LineOptions struct {
	LogY, LogX bool
	// XTicks, when not empty, are the x axis's only labelled ticks, at
	// these values with these labels (the layers of a network, say).
	XTicks  []float64
	XLabels []string
	// Dots marks every point with a dot, not only lone ones.
	Dots bool
}

// WriteLinePlot is WriteCurvePlot with more say over the axes: a log x
// axis, fixed x ticks, a dot on every point.
func WriteLinePlot(path, title, xlabel, ylabel string, curves []PlotCurve, o LineOptions) error {
	png, err := renderLines(title, xlabel, ylabel, curves, o)
	if err == nil {
		err = fsutil.Replace(path, func(w io.Writer) error { _, err := w.Write(png); return err })
	}
	if err != nil {
		return fmt.Errorf("pipeline: line plot %q: %w", path, err)
	}
	return nil
}

// plotFixedTicks labels the axis at the given values only.
type plotFixedTicks struct {
	at     []float64
	labels []string
}

// Ticks implements plot.Ticker.
func (t plotFixedTicks) Ticks(lo, hi float64) []plot.Tick {
	var ticks []plot.Tick
	for i, v := range t.at {
		if v >= lo && v <= hi {
			ticks = append(ticks, plot.Tick{Value: v, Label: t.labels[i]})
		}
	}
	return ticks
}

func renderLines(title, xlabel, ylabel string, curves []PlotCurve, o LineOptions) ([]byte, error) {
	logY, logX := o.LogY, o.LogX
	if len(o.XTicks) != len(o.XLabels) {
		return nil, fmt.Errorf("%d x ticks but %d labels", len(o.XTicks), len(o.XLabels))
	}
	if len(curves) == 0 {
		return nil, fmt.Errorf("%w: no curves", ErrNoPlotData)
	}
	p := newPlot(title)
	p.X.Label.Text, p.Y.Label.Text = xlabel, ylabel
	grid := plotter.NewGrid()
	grid.Vertical, grid.Horizontal = plotGridStyle, plotGridStyle
	p.Add(grid)

	width := vg.Points(1.6)
	if len(curves) > 12 {
		width = vg.Points(1.1)
	}
	xmin, xmax := math.Inf(1), math.Inf(-1)
	ymin, ymax := math.Inf(1), math.Inf(-1)
	entries := make([]plotEntry, len(curves))
	for i, c := range curves {
		if len(c.X) != len(c.Y) {
			return nil, fmt.Errorf("curve %d (%q): %d x values but %d y values", i, c.Label, len(c.X), len(c.Y))
		}
		style := draw.LineStyle{
			Color:  plotColor(i),
			Width:  width,
			Dashes: plotDashes[i/len(plotPalette)%len(plotDashes)],
		}
		dot := draw.GlyphStyle{Color: style.Color, Radius: width * 1.5, Shape: draw.CircleGlyph{}}
		if o.Dots {
			dot.Radius = width * 2.2
		}
		var seg plotter.XYs
		flush := func() {
			switch len(seg) {
			case 0:
				return
			case 1:
				p.Add(&plotter.Scatter{XYs: seg, GlyphStyle: dot})
			default:
				p.Add(&plotter.Line{XYs: seg, LineStyle: style})
			}

			if o.Dots && len(seg) > 1 {
				p.Add(&plotter.Scatter{XYs: seg, GlyphStyle: dot})
			}
			seg = nil
		}
		points := 0
		for j, x := range c.X {
			y := c.Y[j]
			if math.IsNaN(x) || math.IsInf(x, 0) || math.IsNaN(y) || math.IsInf(y, 0) || (logY && y <= 0) || (logX && x <= 0) {
				flush()
				continue
			}
			seg = append(seg, plotter.XY{X: x, Y: y})
			points++
			xmin, xmax = min(xmin, x), max(xmax, x)
			ymin, ymax = min(ymin, y), max(ymax, y)
		}
		flush()
		label := c.Label
		if points == 0 {
			label += " (no data)"
		}
		entries[i] = plotEntry{label: label, thumb: &plotter.Line{LineStyle: style}}
	}
	if math.IsInf(xmin, 1) {
		if logY {
			return nil, fmt.Errorf("%w: no curve has a finite point with y > 0 for the log axis", ErrNoPlotData)
		}
		return nil, fmt.Errorf("%w: no curve has a finite point", ErrNoPlotData)
	}

	switch {
	case logX:
		l0, l1 := math.Log10(xmin), math.Log10(xmax)
		pad := 0.05 * (l1 - l0)
		if l0 == l1 {
			pad = 0.1
		}
		p.X.Min, p.X.Max = math.Pow(10, l0-pad), math.Pow(10, l1+pad)
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = plotLogTicks{}
	default:
		if xmin == xmax {
			xmin, xmax = xmin-0.5, xmax+0.5
		}
		if len(o.XTicks) > 0 {
			pad := 0.05 * (xmax - xmin)
			p.X.Min, p.X.Max = xmin-pad, xmax+pad
		} else {
			p.X.Min, p.X.Max = plotNiceRange(xmin, xmax, plotCurveTicks)
			p.X.Tick.Marker = plotLinearTicks{n: plotCurveTicks}
		}
	}
	if len(o.XTicks) > 0 {
		p.X.Tick.Marker = plotFixedTicks{at: o.XTicks, labels: o.XLabels}
	}
	if logY {
		l0, l1 := math.Log10(ymin), math.Log10(ymax)
		pad := 0.03 * (l1 - l0)
		if l0 == l1 {
			pad = 0.1
		}
		p.Y.Min, p.Y.Max = math.Pow(10, l0-pad), math.Pow(10, l1+pad)
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plotLogTicks{}
	} else {
		pad := 0.03 * (ymax - ymin)
		if ymin == ymax {
			pad = max(math.Abs(ymin)*0.05, 0.5)
		}
		p.Y.Min, p.Y.Max = ymin-pad, ymax+pad
		p.Y.Tick.Marker = plotLinearTicks{n: plotCurveTicks}
	}
	return renderPlot(p, entries, nil)
}

// plotLogTicks marks a logarithmic axis: a labelled tick at 1·10^k only when
// the range spans more than four decades, at 1, 2 and 5·10^k over more than
// one decade, at every m·10^k (m = 1…9) over half a decade to one, and
// evenly spaced ones (plotLinearTicks) over less; unlabelled ticks at the
// other m·10^k.
type plotLogTicks struct{}

// Ticks implements plot.Ticker; min and max must be positive.
func (plotLogTicks) Ticks(lo, hi float64) []plot.Tick {
	decades := math.Log10(hi / lo)
	if decades < 0.5 {
		return plotLinearTicks{n: 4}.Ticks(lo, hi)
	}
	labelled := func(m int) bool { return true }
	switch {
	case decades > 4:
		labelled = func(m int) bool { return m == 1 }
	case decades > 1:
		labelled = func(m int) bool { return m == 1 || m == 2 || m == 5 }
	}
	var ticks []plot.Tick
	for e := int(math.Floor(math.Log10(lo))); e <= int(math.Ceil(math.Log10(hi))); e++ {
		for m := 1; m <= 9; m++ {
			v := float64(m) * math.Pow(10, float64(e))
			if v < lo || v > hi {
				continue
			}
			t := plot.Tick{Value: v}
			if labelled(m) {
				t.Label = strconv.FormatFloat(v, 'g', 4, 64)
			}
			ticks = append(ticks, t)
		}
	}
	return ticks
}

// plotLinearTicks marks a linear axis with labelled ticks at the multiples
// of a round step (1, 2, 2.5 or 5·10^k) that divides the range into about n
// intervals (at most 1.1·n), and unlabelled ticks between them.
type plotLinearTicks struct{ n int }

// plotStep returns the smallest round step (1, 2, 2.5 or 5·10^k) that
// divides [lo, hi] into at most 1.1·n intervals, n ≥ 1, and the number of
// minor intervals per step.
func plotStep(lo, hi float64, n int) (step float64, minor int) {
	raw := (hi - lo) / float64(n)
	if !(raw > 0) || math.IsInf(raw, 0) {
		return 1, 1
	}
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []struct {
		f     float64
		minor int
	}{{1, 5}, {2, 4}, {2.5, 5}, {5, 5}} {
		if m.f*mag >= raw*0.9 {
			return m.f * mag, m.minor
		}
	}
	return 10 * mag, 5
}

// Ticks implements plot.Ticker.
func (t plotLinearTicks) Ticks(lo, hi float64) []plot.Tick {
	step, minor := plotStep(lo, hi, max(1, t.n))
	// Decimals needed to print the step exactly.
	decimals := 0
	for f := step; decimals < 15 && math.Abs(f-math.Round(f)) > 1e-9*math.Max(1, math.Abs(f)); f *= 10 {
		decimals++
	}
	format := func(v float64) string {
		if math.Max(math.Abs(lo), math.Abs(hi)) >= 1e6 {
			return strconv.FormatFloat(v, 'g', 6, 64)
		}
		return strconv.FormatFloat(v, 'f', decimals, 64)
	}
	sub := step / float64(minor)
	eps := 1e-9 * step
	var ticks []plot.Tick
	for k := math.Ceil((lo - eps) / sub); k*sub <= hi+eps; k++ {
		v := k * sub
		if v == 0 {
			v = 0 // not −0
		}
		tk := plot.Tick{Value: math.Min(math.Max(v, lo), hi)}
		if math.Mod(k, float64(minor)) == 0 {
			tk.Label = format(v)
		}
		ticks = append(ticks, tk)
	}
	return ticks
}

// plotNiceRange widens [lo, hi] to the neighbouring multiples of the tick
// step when that adds at most 5 % of the range on each side, so that the
// axis starts and ends at a labelled tick.
func plotNiceRange(lo, hi float64, n int) (float64, float64) {
	step, _ := plotStep(lo, hi, n)
	span := hi - lo
	if l := math.Floor(lo/step) * step; lo-l <= 0.05*span {
		lo = l
	}
	if h := math.Ceil(hi/step) * step; h-hi <= 0.05*span {
		hi = h
	}
	return lo, hi
}

// newPlot returns a plot with the report's fonts and a white background.
func newPlot(title string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font = font.From(plotBold, 15)
	p.Title.Padding = vg.Points(10)
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font = font.From(plotSans, 13)
		a.Tick.Label.Font = font.From(plotSans, 11)
		a.Label.Padding = vg.Points(4)
	}
	return p
}

// renderPlot draws p with entries as a legend column (or columns, when
// they do not fit in one) outside the axes on the right and returns the
// PNG bytes. Before drawing, fit (when not nil) is called with the width
// the data area will have, to adjust the axes to it; it returns how far the
// x axis's labels reach left of the data area, and the axes move right
// where the labels would reach past the margin.
func renderPlot(p *plot.Plot, entries []plotEntry, fit func(dataWidth vg.Length) (reach vg.Length)) ([]byte, error) {
	img := vgimg.New(plotWidth, plotHeight)
	dc := draw.New(img)
	area := draw.Crop(dc, plotMargin, -plotMargin, plotMargin, -plotMargin)

	// Legend columns, sized for the height of the area below the title.
	style := plot.NewLegend().TextStyle
	style.Font = font.From(plotSans, 12)
	entryHeight := style.Height("Mg")
	avail := area.Max.Y - area.Min.Y
	if p.Title.Text != "" {
		avail -= p.Title.TextStyle.Height(p.Title.Text) + p.Title.Padding
	}
	perCol := max(1, int((avail+plotLegendPad)/(entryHeight+plotLegendPad)))
	cols := (len(entries) + perCol - 1) / perCol
	perCol = (len(entries) + cols - 1) / cols // balance the columns
	space := style.Width(" ")
	maxText := (plotLegendMaxWidth-vg.Length(cols-1)*plotLegendColGap)/vg.Length(cols) - plotLegendThumb - space
	var textWidth vg.Length
	for i := range entries {
		entries[i].label = fitText(style, entries[i].label, maxText)
		textWidth = max(textWidth, style.Width(entries[i].label))
	}
	colWidth := plotLegendThumb + space + textWidth
	legendWidth := vg.Length(cols)*colWidth + vg.Length(cols-1)*plotLegendColGap

	plotArea := draw.Crop(area, 0, -(legendWidth + plotLegendGap), 0, 0)
	if fit != nil {
		data := p.DataCanvas(plotArea)
		reach := fit(data.Max.X - data.Min.X)
		if over := reach - (data.Min.X - plotArea.Min.X); over > 0 {
			plotArea = draw.Crop(plotArea, over, 0, 0, 0)
		}
	}
	data := p.DataCanvas(plotArea)
	p.Draw(plotArea)

	left := plotArea.Max.X + plotLegendGap
	for c := range cols {
		l := plot.NewLegend()
		l.TextStyle = style
		l.Top, l.Left = true, true
		l.Padding = plotLegendPad
		l.ThumbnailWidth = plotLegendThumb
		for _, e := range entries[c*perCol : min(len(entries), (c+1)*perCol)] {
			l.Add(e.label, e.thumb)
		}
		x := left + vg.Length(c)*(colWidth+plotLegendColGap)
		l.Draw(draw.Canvas{Canvas: dc, Rectangle: vg.Rectangle{
			Min: vg.Point{X: x, Y: area.Min.Y},
			Max: vg.Point{X: x + colWidth, Y: data.Max.Y},
		}})
	}

	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("encoding PNG: %w", err)
	}
	return buf.Bytes(), nil
}

// fitText returns s, or s shortened at the end with "…" so that it is at
// most width wide in style.
func fitText(style text.Style, s string, width vg.Length) string {
	if style.Width(s) <= width {
		return s
	}
	r := []rune(s)
	for n := len(r) - 1; n > 0; n-- {
		if t := string(r[:n]) + "…"; style.Width(t) <= width {
			return t
		}
	}
	return "…"
}
