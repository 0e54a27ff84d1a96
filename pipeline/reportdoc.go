package pipeline

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/patchwise-ml/patchwise/internal/fsutil"
)

// Plots of a run directory besides AccuracyPlot, PerClassPlot and
// CurvesPlot.
const (
	DifferencePlot = "difference.png" // the difference to the random encoder, with intervals
	LayersPlot     = "layers.png"     // linear top-1 by encoder block
	LowShotPlot    = "low-shot.png"   // linear top-1 by share of labels
	ReportHTMLFile = "report.html"
)

// docSection is a section of the report as report.md and report.html
// show it: paragraphs (Markdown inline markup: **bold**, `code`), tables,
// plots, subsections.
type docSection struct {
	Title  string
	Text   []string
	Tables []docTable
	Plots  []docPlot
	Sub    []docSection
	// Bullets are a list after the text.
	Bullets []string
}

// docTable is a table; Right marks the right-aligned columns and Class,
// when not nil, gives each cell a class (report.html colours verdicts).
type docTable struct {
	Caption string // a line above the table, optional
	Head    []string
	Right   []bool
	Rows    [][]string
	Class   [][]string
}

// docPlot is a plot file of the run directory and what it shows.
type docPlot struct {
	File, Alt string
}

// write writes report.json, report.md, report.html and the plots into dir,
// each replacing the earlier one atomically.
func (rep *Report) write(dir string) error {
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	js = append(js, '\n')
	if err := fsutil.Replace(filepath.Join(dir, ReportJSONFile), func(w io.Writer) error { _, err := w.Write(js); return err }); err != nil {
		return fmt.Errorf("pipeline: report: %w", err)
	}
	plots, err := rep.plots()
	if err != nil {
		return fmt.Errorf("pipeline: report: %w", err)
	}
	var files []string
	for _, pl := range plots {
		if err := fsutil.Replace(filepath.Join(dir, pl.file), func(w io.Writer) error { _, err := w.Write(pl.png); return err }); err != nil {
			return fmt.Errorf("pipeline: report: %w", err)
		}
		files = append(files, pl.file)
	}
	doc := rep.document(files)
	md := renderMarkdown(doc)
	if err := fsutil.Replace(filepath.Join(dir, ReportMDFile), func(w io.Writer) error { _, err := io.WriteString(w, md); return err }); err != nil {
		return fmt.Errorf("pipeline: report: %w", err)
	}
	images := map[string][]byte{}
	for _, pl := range plots {
		images[pl.file] = pl.png
	}
	page, err := renderHTML(doc, images)
	if err != nil {
		return fmt.Errorf("pipeline: report: %w", err)
	}
	if err := fsutil.Replace(filepath.Join(dir, ReportHTMLFile), func(w io.Writer) error { _, err := w.Write(page); return err }); err != nil {
		return fmt.Errorf("pipeline: report: %w", err)
	}
	return nil
}

// renderedPlot is a plot's file name and PNG bytes.
type renderedPlot struct {
	file string
	png  []byte
}

// plots renders the report's plots; a plot with nothing to show is left
// out.
func (rep *Report) plots() ([]renderedPlot, error) {
	var out []renderedPlot
	lv := rep.Methods.Level
	if lv == 0 {
		lv = DefaultLevel
	}
	keep := func(file string, png []byte, err error) error {
		if err != nil {
			return err
		}
		out = append(out, renderedPlot{file, png})
		return nil
	}
	// Accuracy: every row's mean with its t interval over seeds.
	var pts []PlotPoint
	for _, r := range rep.Rows {
		pt := PlotPoint{Group: r.Pretext, Series: r.Dataset, Value: 100 * orNaN(r.Linear), Lo: math.NaN(), Hi: math.NaN(), Lo2: math.NaN(), Hi2: math.NaN()}
		if r.Linear.N > 1 {
			h := tQuantile((1+lv)/2, r.Linear.N-1) * r.Linear.Std / math.Sqrt(float64(r.Linear.N))
			pt.Lo, pt.Hi = 100*(r.Linear.Mean-h), 100*(r.Linear.Mean+h)
		}
		pts = append(pts, pt)
	}
	if len(pts) > 0 {
		png, err := renderPointPlot(fmt.Sprintf("Linear probe top-1 accuracy (mean over %d seed%s)", len(rep.Config.Seeds), plural(len(rep.Config.Seeds))),
			"top-1 accuracy (%)", pts, PointPlotStyle{Main: fmt.Sprintf("%g %% CI over seeds", 100*lv)})
		if err := keep(AccuracyPlot, png, err); err != nil {
			return nil, err
		}
	}
	// The difference to the random encoder.
	pts = nil
	for _, c := range rep.Comparisons {
		if c.Reference != BaselineRandom || c.Score != ScoreLinear || len(c.Seeds) == 0 {
			continue
		}
		pt := PlotPoint{Group: c.Pretext, Series: c.Dataset, Value: 100 * c.Mean, Lo: math.NaN(), Hi: math.NaN(), Lo2: math.NaN(), Hi2: math.NaN()}
		if c.T != nil {
			pt.Lo, pt.Hi = 100*c.T.Lo, 100*c.T.Hi
		}
		if c.Bootstrap != nil {
			pt.Lo2, pt.Hi2 = 100*c.Bootstrap.Lo, 100*c.Bootstrap.Hi
		}
		pts = append(pts, pt)
	}
	if len(pts) > 0 {
		png, err := renderPointPlot("Difference to the random encoder (linear probe)", "top-1 difference (points)", pts,
			PointPlotStyle{Main: fmt.Sprintf("%g %% CI over seeds", 100*lv), Second: fmt.Sprintf("%g %% CI over test images", 100*lv), Zero: true})
		if err := keep(DifferencePlot, png, err); err != nil {
			return nil, err
		}
	}
	if bars := rep.perClassBars(); len(bars) > 0 {
		d := rep.probed()[0]
		png, err := renderBarPlot(fmt.Sprintf("Linear probe accuracy per class on %s (mean ± std over %d seed%s)", d.Name, len(rep.Config.Seeds), plural(len(rep.Config.Seeds))),
			"top-1 accuracy", bars)
		if err := keep(PerClassPlot, png, err); err != nil {
			return nil, err
		}
	}
	if probed := rep.probed(); len(probed) > 0 {
		d := probed[0].Name
		var curves []PlotCurve
		var ticks []float64
		var labels []string
		for _, lr := range rep.Layers {
			if lr.Dataset != d {
				continue
			}
			c := PlotCurve{Label: lr.Pretext}
			for _, s := range lr.Stages {
				c.X, c.Y = append(c.X, float64(s.Stage)), append(c.Y, 100*orNaN(s.Top1))
				if !slices.Contains(ticks, float64(s.Stage)) {
					ticks = append(ticks, float64(s.Stage))
					labels = append(labels, fmt.Sprintf("block %d (%d×%d×%d)", s.Stage, s.Pooled, s.Pooled, s.FeatureDim/(s.Pooled*s.Pooled)))
				}
			}
			curves = append(curves, c)
		}
		if len(curves) > 0 {
			png, err := renderLines(fmt.Sprintf("Linear probe by encoder block on %s (mean over seeds)", d), "block (pooled bins × width)", "top-1 accuracy (%)",
				curves, LineOptions{XTicks: ticks, XLabels: labels, Dots: true})
			if err := keep(LayersPlot, png, err); err != nil {
				return nil, err
			}
		}
		curves = nil
		for _, ls := range rep.LowShot {
			if ls.Dataset != d {
				continue
			}
			c := PlotCurve{Label: ls.Pretext}
			for _, p := range ls.Points {
				c.X, c.Y = append(c.X, 100*p.Fraction), append(c.Y, 100*orNaN(p.Top1))
			}
			curves = append(curves, c)
		}
		if len(curves) > 0 {
			png, err := renderLines(fmt.Sprintf("Linear probe with few labels on %s (mean over seeds, draws)", d), "labels used (% of the training split)", "top-1 accuracy (%)",
				curves, LineOptions{LogX: true, Dots: true})
			if err := keep(LowShotPlot, png, err); err != nil {
				return nil, err
			}
		}
	}
	if curves := rep.curves(); len(curves) > 0 {
		png, err := renderCurvePlot("Pretext training loss (mean over seeds)", "step", "training loss", curves, true)
		if err := keep(CurvesPlot, png, err); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// si formats x with an SI prefix and three significant digits: 1.23 G.
func si(x float64) string {
	for _, u := range []struct {
		f float64
		p string
	}{{1e15, "P"}, {1e12, "T"}, {1e9, "G"}, {1e6, "M"}, {1e3, "k"}} {
		if math.Abs(x) >= u.f {
			return strconv.FormatFloat(x/u.f, 'g', 3, 64) + " " + u.p
		}
	}
	return strconv.FormatFloat(x, 'g', 3, 64)
}

// points formats a difference in percentage points with its sign.
func points(x float64) string { return fmt.Sprintf("%+.1f", 100*x) }

// span formats an interval in points, "–" for none.
func span(iv *Interval) string {
	if iv == nil {
		return "–"
	}
	return points(iv.Lo) + " to " + points(iv.Hi)
}

// verdictCell is a comparison's verdict in a few words and its class.
func verdictCell(c Comparison) (string, string) {
	switch c.Verdict {
	case VerdictBetter:
		return "**better**", "better"
	case VerdictWorse:
		return "**worse**", "worse"
	case VerdictNone:
		return "–", ""
	}
	switch {
	case c.T == nil:
		return "not resolved (1 seed)", "unresolved"
	case c.T.ExcludesZero:
		return "not resolved (test images)", "unresolved"
	case c.SeedsNeeded != nil && *c.SeedsNeeded > 0:
		return fmt.Sprintf("not resolved (≈ %d seeds)", *c.SeedsNeeded), "unresolved"
	case c.Mean == 0:
		return "no difference", "unresolved"
	}
	return fmt.Sprintf("not resolved (> %d seeds)", MaxSeedsNeeded), "unresolved"
}

// row returns the row of pretext name on dataset ds.
func (rep *Report) row(name, ds string) *ReportRow {
	for i, r := range rep.Rows {
		if r.Pretext == name && r.Dataset == ds {
			return &rep.Rows[i]
		}
	}
	return nil
}

// comparisonTable is the table of the comparisons of dataset ds against
// ref (BaselineRandom, or "" for the best row) on score.
func (rep *Report) comparisonTable(ds, ref, score string) (docTable, string) {
	lv := fmt.Sprintf("%g %%", 100*rep.Methods.Level)
	t := docTable{
		Head:  []string{"pretext", "top-1 (%)", "Δ (points)", lv + " CI, seeds", lv + " CI, test images", "verdict"},
		Right: []bool{false, true, true, true, true, false},
	}
	if ref == "" {
		ref = rep.best(ds)
	}
	reference := ""
	for _, c := range rep.Comparisons {
		if c.Dataset != ds || c.Score != score || c.Reference != ref {
			continue
		}
		reference = c.Reference
		top := "–"
		if score == ScoreLinear {
			if r := rep.row(c.Pretext, ds); r != nil {
				top = pct(r.Linear)
			}
		} else if mean, ok := rep.lowShotMean(c.Pretext, ds, score); ok {
			top = pct(mean)
		}
		v, class := verdictCell(c)
		delta := "–"
		if len(c.Seeds) > 0 {
			delta = points(c.Mean)
		}
		t.Rows = append(t.Rows, []string{c.Pretext, top, delta, span(c.T), span(c.Bootstrap), v})
		t.Class = append(t.Class, []string{"", "", "", "", "", class})
	}
	return t, reference
}

// lowShotMean is the low-shot score's stat of pretext name on ds.
func (rep *Report) lowShotMean(name, ds, score string) (Stat, bool) {
	var f float64
	if _, err := fmt.Sscanf(score, ScoreLowShot+"%g", &f); err != nil {
		return Stat{}, false
	}
	for _, ls := range rep.LowShot {
		if ls.Pretext == name && ls.Dataset == ds {
			for _, p := range ls.Points {
				if p.Fraction == f {
					return p.Top1, true
				}
			}
		}
	}
	return Stat{}, false
}

// document lays out the report: what report.md and report.html show.
// plots lists the plot files written.
func (rep *Report) document(plots []string) []docSection {
	cfg := rep.Config
	has := func(f string) bool { return slices.Contains(plots, f) }
	var doc []docSection

	intro := docSection{Title: "Pretext comparison"}
	pre := rep.Datasets[0]
	s := fmt.Sprintf("Pretrained on **%s** (`%.12s`)", pre.Name, pre.ID)
	if len(rep.Datasets) > 1 {
		var ts []string
		for _, d := range rep.Datasets[1:] {
			ts = append(ts, fmt.Sprintf("**%s** (`%.12s`)", d.Name, d.ID))
		}
		s += "; transfer to " + strings.Join(ts, ", ")
	}
	s += fmt.Sprintf(". %d seed%s (%s), paired: seed s gives every row the same initial encoder and the same order of training images. Top-1 accuracy on each dataset's test split (its val split when it has no test split).",
		len(cfg.Seeds), plural(len(cfg.Seeds)), joinSeeds(cfg.Seeds))
	intro.Text = append(intro.Text, s)
	for _, d := range rep.Datasets {
		if d.NotProbed != "" {
			intro.Text = append(intro.Text, fmt.Sprintf("**%s** is not probed: %s.", d.Name, d.NotProbed))
		}
	}
	doc = append(doc, intro)

	lv := fmt.Sprintf("%g %%", 100*rep.Methods.Level)
	if slices.Contains(cfg.Pretexts, BaselineRandom) {
		sec := docSection{Title: "Does a pretext beat the random encoder?"}
		sec.Text = append(sec.Text, fmt.Sprintf("The difference of each row's linear probe to the untrained encoder's, in percentage points, paired by seed: a %s interval over seeds (Student t) and one over test images (bootstrap, %d resamples). "+
			"**better** or **worse** when both exclude zero; otherwise not resolved, with about how many seeds would resolve a difference of this size at the spread seen.", lv, rep.Methods.Resamples))
		for _, d := range rep.probed() {
			t, _ := rep.comparisonTable(d.Name, BaselineRandom, ScoreLinear)
			t.Caption = "**" + d.Name + "**"
			sec.Tables = append(sec.Tables, t)
		}
		for _, c := range rep.Comparisons {
			if c.Reference == BaselineRandom && c.Score == ScoreLinear {
				sec.Bullets = append(sec.Bullets, fmt.Sprintf("**%s** on %s: %s", c.Pretext, c.Dataset, c.Summary))
			}
		}
		if has(DifferencePlot) {
			sec.Plots = append(sec.Plots, docPlot{DifferencePlot, "Difference to the random encoder with intervals over seeds and over test images"})
		}
		doc = append(doc, sec)
	}

	best := docSection{Title: "Difference to the best row"}
	best.Text = append(best.Text, "The best row of each dataset is the one with the highest mean linear top-1 among those pretrained without labels (the supervised upper bound is left out); every other row against it, as above.")
	for _, d := range rep.probed() {
		t, ref := rep.comparisonTable(d.Name, "", ScoreLinear)
		if ref == "" {
			continue
		}
		t.Caption = fmt.Sprintf("**%s**: best **%s** (%s %%)", d.Name, ref, pct(rep.row(ref, d.Name).Linear))
		best.Tables = append(best.Tables, t)
	}
	if len(best.Tables) > 0 {
		doc = append(doc, best)
	}

	acc := docSection{Title: "Probe accuracy"}
	acc.Text = append(acc.Text, fmt.Sprintf("Top-1 accuracy (%%), mean ± standard deviation over seeds: the linear probe and the k-NN probes of the last block's features."))
	t := docTable{Head: []string{"pretext"}, Right: []bool{false}}
	for _, d := range rep.probed() {
		t.Head = append(t.Head, d.Name+" linear", d.Name+" k-NN 20", d.Name+" k-NN 200")
		t.Right = append(t.Right, true, true, true)
	}
	var notes []string
	for _, name := range cfg.Pretexts {
		row := []string{name}
		failed := 0
		for _, d := range rep.probed() {
			if r := rep.row(name, d.Name); r != nil {
				row = append(row, pct(r.Linear), pct(r.KNN20), pct(r.KNN200))
				failed = r.Failed
			}
		}
		t.Rows = append(t.Rows, row)
		if failed > 0 {
			notes = append(notes, fmt.Sprintf("%s: the pretraining of %d of %d seeds diverged (see `error` in report.json); its numbers are over the others.", name, failed, len(cfg.Seeds)))
		}
		if i := slices.IndexFunc(rep.Entries, func(e ReportEntry) bool { return e.Pretext == name && e.Skipped != "" }); i >= 0 {
			notes = append(notes, fmt.Sprintf("%s: %s.", name, rep.Entries[i].Skipped))
		}
	}
	acc.Tables = append(acc.Tables, t)
	acc.Text = append(acc.Text, notes...)
	if has(AccuracyPlot) {
		acc.Plots = append(acc.Plots, docPlot{AccuracyPlot, "Linear probe accuracy of every row with its interval over seeds"})
	}
	doc = append(doc, acc)

	if sec, ok := rep.lowShotSection(); ok {
		if has(LowShotPlot) {
			sec.Plots = append(sec.Plots, docPlot{LowShotPlot, "Linear probe accuracy against the share of labels"})
		}
		doc = append(doc, sec)
	}
	if sec, ok := rep.layersSection(); ok {
		if has(LayersPlot) {
			sec.Plots = append(sec.Plots, docPlot{LayersPlot, "Linear probe accuracy by encoder block"})
		}
		doc = append(doc, sec)
	}
	if sec, ok := rep.budgetSection(); ok {
		doc = append(doc, sec)
	}
	if sec, ok := rep.perClassSection(); ok {
		if has(PerClassPlot) {
			sec.Plots = append(sec.Plots, docPlot{PerClassPlot, "Linear probe accuracy per class"})
		}
		doc = append(doc, sec)
	}
	train := rep.trainingSection()
	if has(CurvesPlot) {
		train.Plots = append(train.Plots, docPlot{CurvesPlot, "Pretext training loss"})
	}
	doc = append(doc, train, rep.protocolSection(plots))
	return doc
}

// lowShotSection is the low-shot probes' table per dataset.
func (rep *Report) lowShotSection() (docSection, bool) {
	if len(rep.LowShot) == 0 {
		return docSection{}, false
	}
	sec := docSection{Title: "Few labels"}
	lc := rep.Config.LowShot.WithDefaults()
	sec.Text = append(sec.Text, fmt.Sprintf("The linear probe fitted on class-balanced subsets of the training split, the same subsets for every row of a seed; top-1 (%%) mean ± std over seeds of each seed's mean over its draws, and in brackets the difference to the random encoder in points with its %g %% interval over seeds. "+
		"λ is chosen on a carve of the subset when every class has at least %d images in it, else fixed at 1/n.", 100*rep.Methods.Level, lc.CarveMin))
	for _, d := range rep.probed() {
		fs := rep.fractions(d.Name)
		if len(fs) == 0 {
			continue
		}
		t := docTable{Head: []string{"pretext"}, Right: []bool{false}}
		var first *LowShotRow
		for i := range rep.LowShot {
			if rep.LowShot[i].Dataset == d.Name {
				first = &rep.LowShot[i]
				break
			}
		}
		for _, p := range first.Points {
			h := fmt.Sprintf("%g %% (%d/class, %d draws)", 100*p.Fraction, p.PerClass, p.Draws)
			if p.Fraction == 1 {
				h = "100 %"
			}
			t.Head = append(t.Head, h)
			t.Right = append(t.Right, true)
		}
		for _, ls := range rep.LowShot {
			if ls.Dataset != d.Name {
				continue
			}
			row := []string{ls.Pretext}
			class := []string{""}
			for _, p := range ls.Points {
				cell, cl := pct(p.Top1), ""
				score := fmt.Sprintf("%s%g", ScoreLowShot, p.Fraction)
				if p.Fraction == 1 {
					score = ScoreLinear
				}
				for _, c := range rep.Comparisons {
					if c.Pretext == ls.Pretext && c.Dataset == d.Name && c.Reference == BaselineRandom && c.Score == score && len(c.Seeds) > 0 {
						cell += fmt.Sprintf(" (%s; %s)", points(c.Mean), span(c.T))
						_, cl = verdictCell(c)
					}
				}
				row, class = append(row, cell), append(class, cl)
			}
			t.Rows, t.Class = append(t.Rows, row), append(t.Class, class)
		}
		t.Caption = "**" + d.Name + "**"
		sec.Tables = append(sec.Tables, t)
	}
	return sec, true
}

// layersSection is the layer-wise probes' table per dataset.
func (rep *Report) layersSection() (docSection, bool) {
	if len(rep.Layers) == 0 {
		return docSection{}, false
	}
	sec := docSection{Title: "Layer by layer"}
	sec.Text = append(sec.Text, fmt.Sprintf("The linear probe of every encoder block, each block's map average-pooled to p×p bins so that every block gives about %d features; top-1 (%%) mean ± std over seeds, the best block of each row in bold.", rep.Layers[0].Features))
	for _, d := range rep.probed() {
		var rows []LayerRow
		for _, lr := range rep.Layers {
			if lr.Dataset == d.Name {
				rows = append(rows, lr)
			}
		}
		if len(rows) == 0 {
			continue
		}
		t := docTable{Head: []string{"pretext"}, Right: []bool{false}, Caption: "**" + d.Name + "**"}
		for _, s := range rows[0].Stages {
			t.Head = append(t.Head, fmt.Sprintf("block %d (%d×%d×%d = %d)", s.Stage, s.Pooled, s.Pooled, s.FeatureDim/(s.Pooled*s.Pooled), s.FeatureDim))
			t.Right = append(t.Right, true)
		}
		t.Head = append(t.Head, "best")
		t.Right = append(t.Right, true)
		for _, lr := range rows {
			row := []string{lr.Pretext}
			for _, s := range lr.Stages {
				cell := pct(s.Top1)
				if s.Stage == lr.Best {
					cell = "**" + cell + "**"
				}
				row = append(row, cell)
			}
			t.Rows = append(t.Rows, append(row, "block "+strconv.Itoa(lr.Best)))
		}
		sec.Tables = append(sec.Tables, t)
	}
	return sec, true
}

// budgetSection is the pretraining budgets' table.
func (rep *Report) budgetSection() (docSection, bool) {
	if len(rep.Budgets) == 0 {
		return docSection{}, false
	}
	sec := docSection{Title: "Budgets"}
	sec.Text = append(sec.Text, "What each pretext's pretraining cost, per seed: images are the samples drawn (steps × batch), views the images the sampler made from them (crops, tiles, rotations); FLOPs count the products of a step's forward and backward pass as the kernels ran them (methods.flops in report.json); wall time is the mean over seeds on this machine.")
	t := docTable{Head: []string{"pretext", "optimiser", "lr", "batch", "steps", "images", "views", "FLOPs/step", "FLOPs", "wall time (s)"},
		Right: []bool{false, false, true, true, true, true, true, true, true, true}}
	for _, b := range rep.Budgets {
		t.Rows = append(t.Rows, []string{b.Pretext, b.Optimizer, strconv.FormatFloat(b.LR, 'g', 4, 64), strconv.Itoa(b.Batch), strconv.Itoa(b.Steps),
			strconv.FormatInt(b.Images, 10), strconv.FormatInt(b.Views, 10), si(b.FLOPsPerStep), si(b.FLOPs), num(b.Seconds, "%.1f")})
	}
	sec.Tables = append(sec.Tables, t)
	for _, s := range rep.Sweeps {
		var parts []string
		for _, tr := range s.Trials {
			if tr.ValLoss == nil {
				parts = append(parts, fmt.Sprintf("%g diverged", tr.LR))
			} else {
				parts = append(parts, fmt.Sprintf("%g → %.4f", tr.LR, *tr.ValLoss))
			}
		}
		extra := ""
		for _, b := range rep.Budgets {
			if b.Pretext == s.Pretext && b.SweepFLOPs > 0 {
				extra = fmt.Sprintf(" The sweep's other pretrainings cost %s FLOPs and %.1f s more.", si(b.SweepFLOPs), b.SweepSeconds)
			}
		}
		sec.Bullets = append(sec.Bullets, fmt.Sprintf("Learning-rate sweep of **%s** (seed %d, validation loss on the %s): %s; chosen %g.%s", s.Pretext, s.Seed, s.Validation, strings.Join(parts, ", "), s.Chosen, extra))
	}
	return sec, true
}

// perClassSection is a table per dataset of the linear probe's accuracy
// on each class (rows, by name) for each pretext (columns).
func (rep *Report) perClassSection() (docSection, bool) {
	var pretexts []string
	for _, name := range rep.Config.Pretexts {
		for _, r := range rep.Rows {
			if r.Pretext == name && len(r.PerClass) > 0 {
				pretexts = append(pretexts, name)
				break
			}
		}
	}
	if len(pretexts) == 0 {
		return docSection{}, false
	}
	sec := docSection{Title: "Per-class accuracy"}
	sec.Text = append(sec.Text, "Linear probe top-1 accuracy (%) on each class of each dataset's test split, mean over seeds; the standard deviations are in report.json (`rows[].per_class_linear`).")
	for _, d := range rep.probed() {
		sub := docSection{Title: d.Name}
		t := docTable{Head: append([]string{"class"}, pretexts...), Right: []bool{false}}
		for range pretexts {
			t.Right = append(t.Right, true)
		}
		for c, class := range rep.classNames(d) {
			row := []string{class}
			for _, p := range pretexts {
				cell := "–"
				for _, r := range rep.Rows {
					if r.Pretext == p && r.Dataset == d.Name && c < len(r.PerClass) && r.PerClass[c].N > 0 {
						cell = fmt.Sprintf("%.1f", 100*r.PerClass[c].Mean)
					}
				}
				row = append(row, cell)
			}
			t.Rows = append(t.Rows, row)
		}
		sub.Tables = append(sub.Tables, t)
		sec.Sub = append(sec.Sub, sub)
	}
	return sec, true
}

// trainingSection is the pretext training summary.
func (rep *Report) trainingSection() docSection {
	sec := docSection{Title: "Pretext training"}
	t := docTable{Head: []string{"pretext", "steps", "final loss", "pretext validation", "training time (s)"}, Right: []bool{false, true, true, false, true}}
	for _, name := range rep.Config.Pretexts {
		var loss, secs []float64
		var trained []*TrainingSummary
		steps := 0
		for _, e := range rep.Entries {
			if tr := e.Training; e.Pretext == name && tr != nil {
				steps = tr.Steps
				loss, secs = append(loss, tr.Loss), append(secs, tr.Seconds)
				trained = append(trained, tr)
			}
		}
		if len(loss) == 0 {
			t.Rows = append(t.Rows, []string{name, "–", "–", "–", "–"})
			continue
		}
		t.Rows = append(t.Rows, []string{name, strconv.Itoa(steps), num(statOf(loss), "%.4f"), validationSummary(name, trained), num(statOf(secs), "%.1f")})
	}
	sec.Tables = append(sec.Tables, t)
	return sec
}

// protocolSection says how every number was made.
func (rep *Report) protocolSection(plots []string) docSection {
	cfg := rep.Config
	sec := docSection{Title: "Protocol"}
	p := cfg.Pretrain
	widths := p.Encoder.Widths
	s := fmt.Sprintf("Encoder: blocks of conv 3×3 → batch norm → ReLU → max-pool 2, widths %v", widths)
	if len(widths) == 0 {
		s += " (default 32, 64, 128, 256)"
	}
	if p.Encoder.IsResNet() {
		s = "Encoder: " + p.Encoder.Describe()
	}
	sec.Bullets = append(sec.Bullets, s+"; the same for every pretext.")
	for _, e := range rep.Entries {
		if e.Training != nil {
			s := fmt.Sprintf("Pretraining: %d steps each (settings in report.json, `config.pretrain`; resolved in each run's `config.json`", e.Training.Steps)
			if len(cfg.Overrides) > 0 {
				s += "; per-pretext overrides in `config.overrides`, budgets above"
			}
			sec.Bullets = append(sec.Bullets, s+").")
			break
		}
	}
	sec.Bullets = append(sec.Bullets, "Baselines: `random` is the encoder as initialised from the seed, never trained; `pixels` probes the raw pixels; `supervised` is trained with the labels (an upper bound).")
	if q := rep.probeProtocol(); q != nil {
		s := fmt.Sprintf("Probe: features of the last block, globally average-pooled (stage %d), computed in evaluation mode. ", q.Stage)
		s += fmt.Sprintf("Linear: standardised with the training split's mean and std, multinomial logistic regression with L2 by L-BFGS, the L2 strength chosen from %v on %.0f %% of the training split held out (seeded), then refitted on all of it. ", q.Grid, 100*q.ValFraction)
		var ks []string
		for _, k := range q.KNN {
			ks = append(ks, fmt.Sprintf("k = %d, T = %g", k.K, k.T))
		}
		s += fmt.Sprintf("k-NN: cosine similarity, votes weighted by exp(sim/T), %s. Per-seed chosen L2, per-class accuracy and confusion matrices are in report.json.", strings.Join(ks, "; "))
		sec.Bullets = append(sec.Bullets, s)
	}
	m := rep.Methods
	sec.Bullets = append(sec.Bullets,
		"Pairing: "+m.Pairing+".",
		fmt.Sprintf("Interval over seeds (%g %%): %s.", 100*m.Level, m.T),
		fmt.Sprintf("Interval over test images (%g %%, %d resamples, seed %d): %s.", 100*m.Level, m.Resamples, m.Seed, m.Bootstrap),
		"Seeds needed: "+m.SeedsNeeded+".",
		"Verdict: "+m.Verdict+".",
		"Best row: "+m.Best+".",
		"FLOPs: "+m.FLOPs+".")
	if m.LowShot != "" {
		sec.Bullets = append(sec.Bullets, "Few labels: "+m.LowShot+".")
	}
	if m.Layers != "" {
		sec.Bullets = append(sec.Bullets, "Layer by layer: "+m.Layers+".")
	}
	var ps []string
	for _, f := range plots {
		ps = append(ps, "`"+f+"`")
	}
	sec.Text = append(sec.Text, fmt.Sprintf("Every number, with the method that made it, is in `%s` (its schema: docs/report.schema.json in the Patchwise repository). Plots: %s.", ReportJSONFile, strings.Join(ps, ", ")))
	return sec
}

// renderMarkdown writes the document as Markdown: the first section's
// title as the page's heading, the others as sections, their subsections
// one level down. Plots are referred to by file name.
func renderMarkdown(doc []docSection) string {
	var b strings.Builder
	var section func(s docSection, level int)
	section = func(s docSection, level int) {
		fmt.Fprintf(&b, "%s %s\n\n", strings.Repeat("#", level), s.Title)
		for _, t := range s.Text {
			b.WriteString(t + "\n\n")
		}
		for _, t := range s.Tables {
			if t.Caption != "" {
				b.WriteString(t.Caption + "\n\n")
			}
			b.WriteString("|")
			for _, h := range t.Head {
				b.WriteString(" " + mdCell(h) + " |")
			}
			b.WriteString("\n|")
			for i := range t.Head {
				if i < len(t.Right) && t.Right[i] {
					b.WriteString("---:|")
				} else {
					b.WriteString("---|")
				}
			}
			b.WriteString("\n")
			for _, r := range t.Rows {
				b.WriteString("|")
				for _, c := range r {
					b.WriteString(" " + mdCell(c) + " |")
				}
				b.WriteString("\n")
			}
			b.WriteString("\n")
		}
		for _, l := range s.Bullets {
			b.WriteString("- " + l + "\n")
		}
		if len(s.Bullets) > 0 {
			b.WriteString("\n")
		}
		for _, p := range s.Plots {
			fmt.Fprintf(&b, "![%s](%s)\n\n", p.Alt, p.File)
		}
		for _, sub := range s.Sub {
			section(sub, level+1)
		}
	}
	for i, s := range doc {
		level := 2
		if i == 0 {
			level = 1
		}
		section(s, level)
	}
	return strings.TrimRight(b.String(), "\n") + "\n"
}

// Markdown renders the report as report.md shows it, the plots named by
// their file names in the run directory.
func (rep *Report) Markdown() string {
	return renderMarkdown(rep.document(rep.plotFiles()))
}

// plotFiles lists the plots the report would draw.
func (rep *Report) plotFiles() []string {
	files := []string{AccuracyPlot}
	for _, c := range rep.Comparisons {
		if c.Reference == BaselineRandom && c.Score == ScoreLinear && len(c.Seeds) > 0 {
			files = append(files, DifferencePlot)
			break
		}
	}
	if len(rep.perClassBars()) > 0 {
		files = append(files, PerClassPlot)
	}
	if len(rep.Layers) > 0 {
		files = append(files, LayersPlot)
	}
	if len(rep.LowShot) > 0 {
		files = append(files, LowShotPlot)
	}
	if len(rep.curves()) > 0 {
		files = append(files, CurvesPlot)
	}
	return files
}

// Summary renders the report's answer for a terminal: whether each
// pretext beats the random encoder, and the probe accuracy table.
func (rep *Report) Summary() string {
	doc := rep.document(nil)
	var keep []docSection
	for i, s := range doc {
		if i == 0 || s.Title == "Does a pretext beat the random encoder?" || s.Title == "Probe accuracy" {
			s.Plots = nil
			if i > 0 {
				s.Bullets = nil
			}
			keep = append(keep, s)
		}
	}
	return renderMarkdown(keep)
}
