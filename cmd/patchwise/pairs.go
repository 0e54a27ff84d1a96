package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/patchwise-ml/patchwise/augment"
	"github.com/patchwise-ml/patchwise/data"
	"github.com/patchwise-ml/patchwise/data/builtin"
)

var pairsCmd = &command{
	name:    "pairs",
	summary: "draw sampled crop pairs on their images, to see the sampler at work",
	usage: `patchwise pairs DATASET -o FILE.png [--n 16] [--sampler grid|free]
	[--patch P] [--gap G] [--jitter J] [--min-dist D] [--max-dist D] [--min-gap G]
	[--color none|drop|project|gray] [--pixelate P] [--split S] [--seed S]

Pairs draws the first --n crop pairs that pretraining would draw in its
first epoch with these settings and seed, each on its source image: crop A
(the grid's centre patch) outlined in blue, crop B in orange with its label,
the direction from A to B (0 top-left, 1 top, 2 top-right, 3 left, 4 right,
5 bottom-left, 6 bottom, 7 bottom-right); next to them the two crops after
the colour transform and pixelation. The PNG file must not exist yet.

Sizes are pixels, or fractions of the image side when below 1; 0 means zero
pixels and an absent flag the default. The grid sampler takes the centre of
a 3×3 grid of patches and one of its 8 neighbours, each moved by up to
±jitter (defaults: patch 0.22, gap 0.11, jitter 0.03 of the side). The free
sampler draws two crops whose centres are --min-dist to --max-dist apart
(defaults: patch 0.3, distances 0.4 to 0.7 of the side) with at least
--min-gap between their borders, labelled by the direction in 8 bins of 45°.
A geometry that cannot fit the images is refused with the largest one that
would.

` + datasetArgHelp("DATASET"),
	example: `patchwise pairs fmnist -o pairs.png
patchwise pairs builtin:mnist-small -o mnist-pairs.png --seed 3
patchwise pairs photos-64 -o free.png --sampler free --patch 16 --min-dist 20 --max-dist 40 --color project --pixelate 0.33`,
}

func init() { pairsCmd.run = runPairs }

// lengthFlag is an augment.Length flag: pixels, or a fraction of the side
// below 1; 0 means zero pixels (augment.None), an absent flag the default.
type lengthFlag struct{ l *augment.Length }

func (f lengthFlag) String() string {
	if f.l == nil || *f.l == 0 {
		return ""
	}
	if *f.l == augment.None {
		return "0"
	}
	return strconv.FormatFloat(float64(*f.l), 'g', -1, 64)
}

func (f lengthFlag) Set(s string) error {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return errors.New("want pixels (≥ 1), a fraction of the image side (below 1), or 0")
	}
	if v == 0 {
		*f.l = augment.None
	} else {
		*f.l = augment.Length(v)
	}
	return nil
}

// pairsOptions holds the pairs verb's flags.
type pairsOptions struct {
	out, split, color string
	n                 int
	pixelate          float64
	seed              uint64
	pairs             augment.PairConfig
}

func (o *pairsOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&o.out, "o", "", "PNG `file` to write (must not exist)")
	fs.IntVar(&o.n, "n", 16, "pairs to draw")
	fs.StringVar(&o.pairs.Sampler, "sampler", augment.SamplerGrid, "pair sampler: grid or free")
	fs.Var(lengthFlag{&o.pairs.Patch}, "patch", "crop side: `size` in pixels, or fraction of the image side")
	fs.Var(lengthFlag{&o.pairs.Gap}, "gap", "grid: gap between neighbouring patches (`size`)")
	fs.Var(lengthFlag{&o.pairs.Jitter}, "jitter", "grid: largest move of each patch on each axis (`size`)")
	fs.Var(lengthFlag{&o.pairs.MinDist}, "min-dist", "free: least distance between the crops' centres (`size`)")
	fs.Var(lengthFlag{&o.pairs.MaxDist}, "max-dist", "free: greatest distance between the crops' centres (`size`)")
	fs.Var(lengthFlag{&o.pairs.MinGap}, "min-gap", "free: least gap between the crops' borders (`size`)")
	fs.StringVar(&o.color, "color", "none", "colour transform: none, drop (keep one channel), project (remove green–magenta) or gray (with p 0.66)")
	fs.Float64Var(&o.pixelate, "pixelate", 0, "probability of pixelating each crop")
	fs.StringVar(&o.split, "split", "", "split to draw from (default: train, or the first split)")
	fs.Uint64Var(&o.seed, "seed", 0, "seed of the draws")
}

func runPairs(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o pairsOptions
	fset := newFlagSet(pairsCmd)
	o.register(fset)
	dirs, err := parseFlagsArgs(pairsCmd, fset, args, stdout)
	if err != nil {
		return err
	}
	usage := func(err error) error { return &usageError{verb: pairsCmd.name, err: err} }
	var errs []error
	if len(dirs) != 1 {
		errs = append(errs, fmt.Errorf("want one DATASET, got %d arguments", len(dirs)))
	}
	if o.out == "" {
		errs = append(errs, errors.New("-o FILE.png is required"))
	} else if _, err := os.Stat(o.out); err == nil {
		errs = append(errs, fmt.Errorf("-o %q already exists: remove it or choose another name", o.out))
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if o.n < 1 {
		errs = append(errs, fmt.Errorf("--n %d: want at least 1", o.n))
	}
	tr := augment.Transform{Color: o.color, Pixelate: o.pixelate}
	if err := tr.Validate(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return usage(errors.Join(errs...))
	}
	ds, err := builtin.Open(dirs[0])
	if err != nil {
		return err
	}
	m := ds.Manifest()
	if err := o.pairs.Validate(m.Size, m.Size); err != nil {
		return usage(err)
	}
	split := o.split
	if split == "" {
		split = data.Train
		if ds.Len(split) == 0 {
			split = ds.Splits()[0]
		}
	}
	if ds.Len(split) == 0 {
		return usage(fmt.Errorf("--split %q: the dataset has splits %s", split, strings.Join(ds.Splits(), ", ")))
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	recs, err := ds.Load(split)
	if err != nil {
		return err
	}
	img, err := augment.PairSheet(recs, m.Size, m.Channels, o.pairs, tr, o.seed, o.n, 0)
	if err != nil {
		return err
	}
	if err := data.WritePNG(o.out, img); err != nil {
		return err
	}
	g, _ := o.pairs.Geometry(m.Size, m.Size)
	fmt.Fprintf(stdout, "%d pairs from %s %q (%d×%d) to %s\n", min(o.n, len(recs)), dirs[0], split, m.Size, m.Size, o.out)
	fmt.Fprintf(stdout, "%s\n", describeGeometry(g))
	return nil
}

// describeGeometry says in one line what a resolved geometry is.
func describeGeometry(g augment.Geometry) string {
	if g.Sampler == augment.SamplerFree {
		return fmt.Sprintf("free sampler: patch %d px, centre distance %d–%d px, border gap ≥ %d px", g.Patch, g.MinDist, g.MaxDist, g.MinGap)
	}
	return fmt.Sprintf("grid sampler: patch %d px, gap %d px, jitter ±%d px (grid %d px)", g.Patch, g.Gap, g.Jitter, 3*g.Patch+2*g.Gap+2*g.Jitter)
}
