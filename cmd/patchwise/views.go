package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/patchwise-ml/patchwise/augment"
	"github.com/patchwise-ml/patchwise/data"
	"github.com/patchwise-ml/patchwise/data/builtin"
	"github.com/patchwise-ml/patchwise/pipeline"
)

var viewsCmd = &command{
	name:    "views",
	summary: "draw what a pretext's encoder sees: its samples' views, with their labels",
	usage: `patchwise views DATASET --pretext NAME -o FILE.png [--n 8] [--config FILE.json]
	[--eval] [--split S] [--seed S]

Views draws the first --n samples that pretraining with --pretext (and the
settings of --config, a pretraining config as 'patchwise pretrain --config'
reads it) would draw in its first epoch with this seed: one row per
sample, the source image, then every view the pretext's sampler makes of
it — the two crops of a relative-position pair, the four rotations, the
shuffled tiles of a jigsaw, the two augmented views of a contrastive pair,
the image an autoencoder reconstructs — as the encoder receives them, and
the sample's labels. With --eval it draws the samples of validation
instead. Normalised images are stretched to show their range. The PNG
file must not exist yet.

The pretexts:

` + pretextList(false) + `

` + datasetArgHelp("DATASET"),
	example: `patchwise views builtin:fashion-mnist-small --pretext relpos -o relpos.png
patchwise views fmnist --pretext relpos --config relpos-free.json -o free.png --n 16`,
}

func init() { viewsCmd.run = runViews }

// viewsOptions holds the views verb's flags.
type viewsOptions struct {
	pretext, out, config, split string
	n                           int
	eval                        bool
	seed                        uint64
}

func (o *viewsOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&o.pretext, "pretext", "", "pretext `name` (overrides the config's)")
	fs.StringVar(&o.out, "o", "", "PNG `file` to write (must not exist)")
	fs.IntVar(&o.n, "n", 8, "samples to draw")
	fs.StringVar(&o.config, "config", "", "JSON `file` of pretraining settings (pipeline.PretrainConfig)")
	fs.BoolVar(&o.eval, "eval", false, "draw validation's samples instead of training's")
	fs.StringVar(&o.split, "split", "", "split to draw from (default: train, or the first split)")
	fs.Uint64Var(&o.seed, "seed", 0, "seed of the draws (the pretraining seed)")
}

func runViews(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o viewsOptions
	fset := newFlagSet(viewsCmd)
	o.register(fset)
	pos, err := parseFlagsArgs(viewsCmd, fset, args, stdout)
	if err != nil {
		return err
	}
	usage := func(errs ...error) error { return &usageError{verb: viewsCmd.name, err: errors.Join(errs...)} }
	var cfg pipeline.PretrainConfig
	if o.config != "" {
		if cfg, err = pipeline.LoadPretrainConfig(o.config); err != nil {
			return usage(err)
		}
	}
	if o.pretext != "" {
		cfg.Pretext = o.pretext
	}
	var errs []error
	if len(pos) != 1 {
		errs = append(errs, fmt.Errorf("want one DATASET, got %d arguments", len(pos)))
	}
	if cfg.Pretext == "" {
		errs = append(errs, errors.New("--pretext NAME is required"))
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
	if len(errs) > 0 {
		return usage(errs...)
	}
	ds, err := builtin.Open(pos[0])
	if err != nil {
		return err
	}
	s, err := pipeline.PretextSampler(cfg, ds, !o.eval)
	if err != nil {
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
	m := ds.Manifest()
	img, err := augment.SampleSheet(recs, m.Size, m.Channels, s, o.seed, o.n)
	if err != nil {
		return err
	}
	if err := data.WritePNG(o.out, img); err != nil {
		return err
	}
	var vs []string
	for _, v := range s.Views() {
		vs = append(vs, fmt.Sprintf("%s (%d × %d×%d)", v.Name, v.Count, v.Side, v.Side))
	}
	fmt.Fprintf(stdout, "%d samples of %s from %s %q to %s\nviews: %s; %d label(s) a sample\n",
		min(o.n, len(recs)), cfg.Pretext, pos[0], split, o.out, strings.Join(vs, ", "), s.Labels())
	return nil
}
