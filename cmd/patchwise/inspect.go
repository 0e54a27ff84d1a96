package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/patchwise-ml/patchwise/data"
	"github.com/patchwise-ml/patchwise/data/builtin"
)

var inspectCmd = &command{
	name:    "inspect",
	summary: "describe a dataset and draw a contact sheet of its images",
	usage: `patchwise inspect DATASET [--json] [--sheet FILE.png] [--sheet-images 64]

Inspect reads DATASET, checking every shard's checksums as it goes, and
prints its ID, image size, channels, class names, the number of images per
split and class, and what its ingest skipped: the count, and the ingest
report (ingest-report.json in the dataset) that lists every skipped input
with its reason. With --sheet it also draws the first images of the first
split, with their class names, into a PNG file that must not exist yet.

` + datasetArgHelp("DATASET"),
	example: `patchwise inspect fmnist --sheet fmnist.png
patchwise inspect --json fmnist
patchwise inspect builtin:fashion-mnist-small`,
}

func init() { inspectCmd.run = runInspect }

// inspectOptions holds the inspect verb's flags.
type inspectOptions struct {
	json        bool
	sheet       string
	sheetImages int
}

func (o *inspectOptions) register(fs *flag.FlagSet) {
	fs.BoolVar(&o.json, "json", false, "print one JSON object instead of text")
	fs.StringVar(&o.sheet, "sheet", "", "write a contact sheet of images to this PNG `file` (must not exist)")
	fs.IntVar(&o.sheetImages, "sheet-images", 64, "images on the contact sheet")
}

// inspection is what inspect prints; its JSON form is the --json output.
type inspection struct {
	ID            string                    `json:"id"`
	Dir           string                    `json:"dir"`
	FormatVersion int                       `json:"format_version"`
	Size          int                       `json:"size"`
	Channels      int                       `json:"channels"`
	Classes       []string                  `json:"classes"`
	Splits        map[string]int            `json:"splits"`
	PerClass      map[string]map[string]int `json:"per_class,omitempty"` // split → class → images
	Unlabeled     map[string]int            `json:"unlabeled_in_split,omitempty"`
	Preprocessing data.Preprocess           `json:"preprocessing"`
	Source        data.Provenance           `json:"source"`
	Skipped       int                       `json:"skipped"`    // inputs the ingest skipped
	Duplicates    int                       `json:"duplicates"` // records equal to an earlier one (kept)
	// IngestReport is the path of the ingest report, "" when the dataset
	// has none (it was not made by ingest).
	IngestReport string `json:"ingest_report,omitempty"`
	// skips are the first skipped inputs, for the text output.
	skips []data.Skip
}

func runInspect(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o inspectOptions
	fset := newFlagSet(inspectCmd)
	o.register(fset)
	dirs, err := parseFlagsArgs(inspectCmd, fset, args, stdout)
	if err != nil {
		return err
	}
	if len(dirs) != 1 {
		return &usageError{verb: inspectCmd.name, err: fmt.Errorf("want one DATASET, got %d arguments", len(dirs))}
	}
	if o.sheet != "" {
		if _, err := os.Stat(o.sheet); err == nil {
			return &usageError{verb: inspectCmd.name, err: fmt.Errorf("--sheet %q already exists: remove it or choose another name", o.sheet)}
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	ds, err := builtin.Open(dirs[0])
	if err != nil {
		return err
	}
	m := ds.Manifest()
	in := inspection{ID: ds.ID(), Dir: ds.Dir(), FormatVersion: m.FormatVersion, Size: m.Size, Channels: m.Channels,
		Classes: m.Classes, Splits: map[string]int{}, PerClass: map[string]map[string]int{}, Unlabeled: map[string]int{},
		Preprocessing: m.Preprocessing, Source: m.Source, Skipped: m.Skipped, Duplicates: m.Duplicates}
	switch rep, err := ds.IngestReport(); {
	case err == nil:
		in.IngestReport = filepath.Join(ds.Dir(), data.IngestReportFile)
		in.skips = rep.Skipped[:min(len(rep.Skipped), 5)]
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	var sheet []data.Record
	p := newProgress(stderr)
	for _, split := range ds.Splits() {
		in.Splits[split] = ds.Len(split)
		counts := map[string]int{}
		p.Start("read "+split, ds.Len(split))
		err := ds.Stream(ctx, split, 0, 0, func(r data.Record) error {
			p.Add(1)
			if r.Label >= 0 && r.Label < len(m.Classes) {
				counts[m.Classes[r.Label]]++
			} else {
				in.Unlabeled[split]++
			}
			if o.sheet != "" && len(sheet) < o.sheetImages {
				sheet = append(sheet, r)
			}
			return nil
		})
		p.Done()
		if err != nil {
			return err
		}
		if len(counts) > 0 {
			in.PerClass[split] = counts
		}
	}
	if o.sheet != "" {
		img := data.ContactSheet(sheet, m.Size, m.Channels, m.Classes, 8)
		if err := data.WritePNG(o.sheet, img); err != nil {
			return err
		}
	}
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(in)
	}
	printInspection(stdout, in, o.sheet)
	return nil
}

func printInspection(w io.Writer, in inspection, sheet string) {
	fmt.Fprintf(w, "dataset  %s\nid       %s\nformat   version %d\nimages   %dx%d, %d channels (%s resize)\n",
		in.Dir, in.ID, in.FormatVersion, in.Size, in.Size, in.Channels, in.Preprocessing.Resize)
	fmt.Fprintf(w, "source   %s: %s\n", in.Source.Format, strings.Join(in.Source.Inputs, ", "))
	for _, split := range []string{data.Train, data.Val, data.Test, data.Unlabeled} {
		n, ok := in.Splits[split]
		if !ok {
			continue
		}
		fmt.Fprintf(w, "%-8s %d", split, n)
		if counts := in.PerClass[split]; len(counts) > 0 {
			var parts []string
			for _, c := range in.Classes {
				parts = append(parts, fmt.Sprintf("%s %d", c, counts[c]))
			}
			fmt.Fprintf(w, " (%s)", strings.Join(parts, ", "))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "skipped  %d inputs; %d duplicate images kept\n", in.Skipped, in.Duplicates)
	for _, s := range in.skips {
		fmt.Fprintf(w, "         %s: %s\n", s.Path, s.Reason)
	}
	if in.IngestReport != "" {
		more := ""
		if in.Skipped > len(in.skips) {
			more = fmt.Sprintf(" (%d more)", in.Skipped-len(in.skips))
		}
		fmt.Fprintf(w, "report   %s%s\n", in.IngestReport, more)
	} else {
		fmt.Fprintf(w, "report   none (the dataset was not made by ingest)\n")
	}
	if sheet != "" {
		fmt.Fprintf(w, "sheet    %s\n", sheet)
	}
}
