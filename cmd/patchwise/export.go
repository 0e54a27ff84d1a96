package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"github.com/patchwise-ml/patchwise/pipeline"
)

var exportCmd = &command{
	name:    "export",
	summary: "write a checkpoint's encoder to a .safetensors file for PyTorch and others",
	usage: `patchwise export CKPT -o FILE.safetensors [--force]

Export writes the encoder of a pretraining checkpoint, whatever its pretext,
to FILE in the safetensors format, with PyTorch's key names and layouts: the
state_dict of a module whose attribute body is

	nn.Sequential(*[Conv2d(c_in, w, 3, padding=1), BatchNorm2d(w), ReLU(), MaxPool2d(2)]
	              for each block width w)

(body.0.weight [W, C, 3, 3], body.0.bias, body.1.weight, .bias,
.running_mean, .running_var, .num_batches_tracked, then body.4.* for the
next block), so that load_state_dict(strict=True) accepts it. The file's
metadata gives the widths, the input channels and size, the input
convention (NCHW float32, pixel/255, area-resized to the input size, the
pretext's per-image normalisation), the pretext, the checkpoint's step and
the dataset ID. examples/load_encoder.py loads it
with nothing but PyTorch; examples/README.md describes the file.

CKPT is a checkpoint directory (DIR/ckpt-step-NNNNNNNN) or a training
directory, whose latest checkpoint is exported. FILE must not exist unless
--force is given; it is written to a temporary file first and renamed, so
it is never left half-written.`,
	example: `patchwise export runs/relpos -o relpos.safetensors
patchwise export runs/relpos/ckpt-step-00000400 -o relpos.safetensors --force
/usr/bin/python3 examples/load_encoder.py relpos.safetensors --info`,
}

func init() { exportCmd.run = runExport }

// exportOptions holds the export verb's flags.
type exportOptions struct {
	out   string
	force bool
}

func (o *exportOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&o.out, "o", "", "the .safetensors `file` to write (required; must not exist without --force)")
	fs.BoolVar(&o.force, "force", false, "replace the file given to -o if it exists")
}

func runExport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o exportOptions
	fset := newFlagSet(exportCmd)
	o.register(fset)
	pos, err := parseFlagsArgs(exportCmd, fset, args, stdout)
	if err != nil {
		return err
	}
	usage := func(err error) error { return &usageError{verb: exportCmd.name, err: err} }
	switch {
	case len(pos) != 1:
		return usage(fmt.Errorf("want one checkpoint or training directory CKPT, got %d arguments", len(pos)))
	case o.out == "":
		return usage(errors.New("no output file: give -o FILE.safetensors"))
	}
	info, err := pipeline.ExportEncoder(pos[0], o.out, pipeline.ExportOptions{Force: o.force})
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%w (pass --force to replace it)", err)
	}
	if err != nil {
		return err
	}
	printExportSummary(stdout, info)
	return nil
}

// printExportSummary describes a written export.
func printExportSummary(w io.Writer, info *pipeline.ExportInfo) {
	widths := make([]string, len(info.Widths))
	for i, v := range info.Widths {
		widths[i] = fmt.Sprint(v)
	}
	fmt.Fprintf(w, "export     %s (%d tensors, %d bytes)\n", info.Out, info.Tensors, info.Bytes)
	fmt.Fprintf(w, "checkpoint %s (pretext %s, step %d)\n", info.Checkpoint, info.Pretext, info.Step)
	arch := ""
	if a := info.Metadata["arch"]; a != "" {
		arch = fmt.Sprintf("%s (%s stem, torchvision's keys), ", a, info.Metadata["stem"])
	}
	fmt.Fprintf(w, "encoder    %s%d channels, %dx%d input, widths %s, %s-d features\n",
		arch, info.Channels, info.Size, info.Size, strings.Join(widths, ","), info.Metadata["feature_dim"])
	fmt.Fprintf(w, "input      NCHW float32, %s, area-resized to %dx%d, normalize %s\n",
		info.Metadata["input_range"], info.Size, info.Size, info.Metadata["input_normalize"])
}
