package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/patchwise-ml/patchwise/data"
)

var ingestCmd = &command{
	name:    "ingest",
	summary: "turn image folders or standard dataset files into a dataset",
	usage: `patchwise ingest SRC... -o DIR [--format auto|folder|idx|cifar10|cifar100|stl10]
	[--size 32] [--channels 3] [--resize crop|pad|stretch] [--val-fraction 0]
	[--seed 0] [--strict] [--max-pixels 100000000] [--workers 0]
	[--classes NAME,NAME,... | --classes FILE | --unlabelled]
	[--crops N [--crop-scale 0.25,1] [--crop-ratio 0.75,1.333]] [--json]

Ingest decodes every image of the sources, converts it to the requested
channels, resizes it to a square of --size pixels and writes the result as
a versioned, checksummed, compressed dataset in DIR, which must not exist.

A folder of images with class subfolders is a labelled dataset (the
ImageFolder convention); a flat folder is unlabelled. JPEG, PNG, GIF, BMP,
TIFF and WebP are read, with the EXIF orientation applied and transparency
composited on white. The MNIST-family IDX files, CIFAR-10/100 and STL-10
binaries are recognised by their standard file names and keep their own
train/test splits; --val-fraction carves a validation split out of train,
the same one for the same --seed.

Class names, in label order, are the class folders' names of an image
tree, CIFAR's and STL-10's names files when present (batches.meta.txt,
fine_label_names.txt, class_names.txt), and "0" to "9" for IDX files,
which carry none. A classes.txt in an input folder (one name per line, in
label order) replaces them, and --classes replaces both: names separated by
commas, or a file like classes.txt. There must be as many names as classes;
empty and repeated names are refused.

--crops N cuts each image into N random crops instead, for a pool of
training images from a few hundred photos (as STL-10's unlabelled split
was cut from ImageNet): each crop's area is a fraction of the photo's
drawn uniformly from --crop-scale (default 0.25 to 1), its
width/height drawn log-uniformly from --crop-ratio (default 3/4 to 4/3),
its place uniformly among those that fit; it is then stretched to
--size×--size (use --crop-ratio 1,1 for undistorted squares). The crops
depend only on --seed and each photo's path within its folder, not on the
order or --workers; the seed, N and the ranges are recorded in the
manifest, so they make the dataset ID. A crop's origin is the photo's
path, "#crop", its number and its geometry (a.jpg#crop7=320x240+12+40);
the crops of a photo go to the same split. --unlabelled drops the labels
and walks a folder whole, its subfolders not classes (wallpaper trees
sorted by where the pictures came from).

Inputs that cannot be read are skipped and listed, and ingest exits with
status 3; with --strict any bad input fails the ingest and nothing is
written. DIR/ingest-report.json keeps the list: every skipped input with
its path and reason, every group of identical images (all kept) and the
counts; 'patchwise inspect' shows them. The report is not part of the
manifest, so it does not change the dataset ID. Interrupted or failed
ingests leave nothing at DIR.`,
	example: `# a folder of photos with one subfolder per class
patchwise ingest photos/ -o photos-64 --size 64

# Fashion-MNIST from Debian's dataset-fashion-mnist, 10% held out for validation
patchwise ingest /usr/share/datasets/fashion-mnist -o fmnist --size 28 --channels 1 --val-fraction 0.1 \
	--classes 'T-shirt/top,Trouser,Pullover,Dress,Coat,Sandal,Shirt,Sneaker,Bag,Ankle boot'`,
}

func init() { ingestCmd.run = runIngest }

// ingestOptions holds the ingest verb's flags.
type ingestOptions struct {
	out, format, resize string
	classes             string
	size, channels      int
	valFraction         float64
	seed                uint64
	strict, json        bool
	maxPixels, workers  int
	unlabelled          bool
	crops               int
	cropScale           string
	cropRatio           string
}

func (o *ingestOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&o.out, "o", "", "dataset `dir`ectory to create (must not exist)")
	fs.StringVar(&o.format, "format", "auto", "source format: "+strings.Join(data.Formats, ", "))
	fs.IntVar(&o.size, "size", 32, "image side in `pixels` after resizing")
	fs.IntVar(&o.channels, "channels", 3, "channels to store: 1 (grey) or 3 (RGB)")
	fs.StringVar(&o.resize, "resize", data.ResizeCrop, "resize `policy`: crop (shorter side to --size, centre crop), pad (longer side, pad with white) or stretch")
	fs.Float64Var(&o.valFraction, "val-fraction", 0, "fraction of the training images to hold out as a validation split, in [0, 1)")
	fs.Uint64Var(&o.seed, "seed", 0, "seed that chooses the validation images")
	fs.BoolVar(&o.strict, "strict", false, "fail, writing nothing, if any input cannot be read")
	fs.IntVar(&o.maxPixels, "max-pixels", 100_000_000, "refuse images with more `pixels` (width × height) than this, before decoding")
	fs.IntVar(&o.workers, "workers", 0, "decoding goroutines (0: one per core)")
	fs.StringVar(&o.classes, "classes", "", "class `names` in label order, separated by commas, or a file of names, one per line (default: the sources' own, or classes.txt in an input folder)")
	fs.BoolVar(&o.json, "json", false, "print the report as JSON")
	fs.BoolVar(&o.unlabelled, "unlabelled", false, "drop the labels: every image unlabelled, class subfolders walked as plain folders")
	fs.IntVar(&o.crops, "crops", 0, "random crops per image (0: the whole image, resized by --resize)")
	fs.StringVar(&o.cropScale, "crop-scale", "", "`min,max` of a crop's area as a fraction of the image's (default 0.25,1)")
	fs.StringVar(&o.cropRatio, "crop-ratio", "", "`min,max` of a crop's width/height (default 0.75,1.333)")
}

// parseRange reads "min,max"; "" is the zero range (the default).
func parseRange(flag, s string) ([2]float64, error) {
	var r [2]float64
	if s == "" {
		return r, nil
	}
	a, b, ok := strings.Cut(s, ",")
	var err1, err2 error
	if ok {
		r[0], err1 = strconv.ParseFloat(strings.TrimSpace(a), 64)
		r[1], err2 = strconv.ParseFloat(strings.TrimSpace(b), 64)
	}
	if !ok || err1 != nil || err2 != nil {
		return r, fmt.Errorf("--%s %q: want two numbers, min,max", flag, s)
	}
	return r, nil
}

func runIngest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o ingestOptions
	fs := newFlagSet(ingestCmd)
	o.register(fs)
	srcs, err := parseFlagsArgs(ingestCmd, fs, args, stdout)
	if err != nil {
		return err
	}
	var problems []error
	scale, err := parseRange("crop-scale", o.cropScale)
	if err != nil {
		problems = append(problems, err)
	}
	ratio, err := parseRange("crop-ratio", o.cropRatio)
	if err != nil {
		problems = append(problems, err)
	}
	resize := o.resize
	if o.crops > 0 && !flagSet(fs, "resize") {
		resize = "" // crops are stretched: the default with crops
	}
	cfg := data.IngestConfig{
		Inputs: srcs, Format: o.format, Out: o.out,
		Preprocess: data.Preprocess{Size: o.size, Channels: o.channels, Resize: resize, MaxPixels: o.maxPixels,
			Crops: data.Crops{N: o.crops, Scale: scale, Ratio: ratio}},
		ValFraction: o.valFraction, Seed: o.seed, Strict: o.strict, Workers: o.workers, Unlabelled: o.unlabelled,
	}
	if o.crops > 0 {
		cfg.Preprocess.Crops.Seed = o.seed
	}
	switch {
	case strings.Contains(o.classes, ","):
		cfg.Classes = strings.Split(o.classes, ",")
		for i, c := range cfg.Classes {
			cfg.Classes[i] = strings.TrimSpace(c)
		}
	case o.classes != "":
		cfg.ClassesFile = o.classes
	}
	if len(srcs) == 0 {
		problems = append(problems, errors.New("no SRC given"))
	}
	if o.out == "" {
		problems = append(problems, errors.New("-o DIR is required"))
	}
	if cfg.ClassesFile != "" {
		if _, err := os.Stat(cfg.ClassesFile); err != nil {
			problems = append(problems, fmt.Errorf("--classes %q: not a list of names separated by commas, and %w", cfg.ClassesFile, err))
		}
	}
	if err := cfg.Validate(); err != nil && len(problems) == 0 {
		var ce *data.ClassNamesError
		if errors.As(err, &ce) {
			err = fmt.Errorf("--classes: %w", err)
		}
		problems = append(problems, err)
	}
	if len(problems) > 0 {
		return &usageError{verb: ingestCmd.name, err: errors.Join(problems...)}
	}
	rep, err := data.Ingest(ctx, cfg, newProgress(stderr))
	if rep != nil {
		for _, s := range rep.Skipped {
			fmt.Fprintf(stderr, "skipped %s: %s\n", s.Path, s.Reason)
		}
	}
	if err != nil {
		return err
	}
	out := ingestOutput{Dir: rep.Dir, ReportFile: filepath.Join(rep.Dir, data.IngestReportFile), Manifest: rep.Manifest, IngestReport: rep}
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return err
		}
	} else {
		printIngestSummary(stdout, out)
	}
	if len(rep.Skipped) > 0 {
		return fmt.Errorf("ingest: %d inputs skipped (listed above and in %s): %w", len(rep.Skipped), out.ReportFile, errSkipped)
	}
	return nil
}

// ingestOutput is what ingest prints with --json: the report as stored in
// the dataset, with the dataset's directory, the report's path and the
// manifest.
type ingestOutput struct {
	Dir        string         `json:"dir"`
	ReportFile string         `json:"report_file"`
	Manifest   *data.Manifest `json:"manifest"`
	*data.IngestReport
}

// printIngestSummary prints what an ingest wrote.
func printIngestSummary(w io.Writer, out ingestOutput) {
	rep, m := out.IngestReport, out.Manifest
	fmt.Fprintf(w, "dataset %s\nid      %s\nimages  %dx%dx%d\n", rep.Dir, rep.ID, m.Size, m.Size, m.Channels)
	if c := m.Preprocessing.Crops; c.N > 0 {
		fmt.Fprintf(w, "crops   %d an image, area %g to %g of the image's, width/height %.3g to %.3g, seed %d\n",
			c.N, c.Scale[0], c.Scale[1], c.Ratio[0], c.Ratio[1], c.Seed)
	}
	for _, split := range []string{data.Train, data.Val, data.Test, data.Unlabeled} {
		if n, ok := m.Splits[split]; ok {
			fmt.Fprintf(w, "%-9s %d\n", split, n)
		}
	}
	if len(m.Classes) > 0 {
		fmt.Fprintf(w, "classes %d: %s\n", len(m.Classes), strings.Join(m.Classes, ", "))
	}
	if c := rep.Counts; c.Duplicates > 0 {
		g := rep.Duplicates[0]
		groups := fmt.Sprintf("%d groups", c.DuplicateGroups)
		if c.DuplicateGroups == 1 {
			groups = "1 group"
		}
		fmt.Fprintf(w, "duplicates %d (kept) in %s, e.g. %s\n", c.Duplicates, groups, strings.Join(g[:min(len(g), 3)], " = "))
	}
	fmt.Fprintf(w, "skipped %d of %d inputs\nreport  %s\n", rep.Counts.Skipped, rep.Counts.Inputs, out.ReportFile)
}

// flagSet reports whether the flag name was given on the command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
