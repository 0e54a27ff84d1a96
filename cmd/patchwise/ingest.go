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
	"strings"

	"github.com/patchwise-ml/patchwise/data"
)

var ingestCmd = &command{
	name:    "ingest",
	summary: "turn image folders or standard dataset files into a dataset",
	usage: `patchwise ingest SRC... -o DIR [--format auto|folder|idx|cifar10|cifar100|stl10]
	[--size 32] [--channels 3] [--resize crop|pad|stretch] [--val-fraction 0]
	[--seed 0] [--strict] [--max-pixels 100000000] [--workers 0]
	[--classes NAME,NAME,... | --classes FILE] [--json]

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
}

func runIngest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o ingestOptions
	fs := newFlagSet(ingestCmd)
	o.register(fs)
	srcs, err := parseFlagsArgs(ingestCmd, fs, args, stdout)
	if err != nil {
		return err
	}
	cfg := data.IngestConfig{
		Inputs: srcs, Format: o.format, Out: o.out,
		Preprocess:  data.Preprocess{Size: o.size, Channels: o.channels, Resize: o.resize, MaxPixels: o.maxPixels},
		ValFraction: o.valFraction, Seed: o.seed, Strict: o.strict, Workers: o.workers,
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
	var problems []error
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
