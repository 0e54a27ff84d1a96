package pipeline

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/patchwise-ml/patchwise/internal/fsutil"
	"github.com/patchwise-ml/patchwise/nn"
	"github.com/patchwise-ml/patchwise/nn/safetensors"
	"github.com/patchwise-ml/patchwise/pretext"
)

// An encoder export is a safetensors file
// (https://github.com/huggingface/safetensors) holding one pretrained
// encoder, whatever pretext trained it, under the key names and in the
// layouts of PyTorch's
//
//	body = nn.Sequential(*[Conv2d(c_in, w, 3, padding=1), BatchNorm2d(w), ReLU(), MaxPool2d(2)] for each block)
//
// (the encoder of bench/torch_ref.py): for block k (from 0), 4k apart,
//
//	body.{4k}.weight                 F32 [W_k, W_{k-1}, 3, 3]  conv kernel, OIHW
//	body.{4k}.bias                   F32 [W_k]                 zeros (Patchwise's convs have none)
//	body.{4k+1}.weight               F32 [W_k]                 batch-norm γ
//	body.{4k+1}.bias                 F32 [W_k]                 batch-norm β
//	body.{4k+1}.running_mean         F32 [W_k]
//	body.{4k+1}.running_var          F32 [W_k]                 unbiased, as PyTorch keeps it
//	body.{4k+1}.num_batches_tracked  I64 []                    the checkpoint's step
//
// with W_{-1} the input channels, so that load_state_dict(strict=True)
// accepts the file. Patchwise's kernels are [Out, K, K, In]; the export
// transposes them. Its batch norm has PyTorch's defaults (eps 1e-5,
// momentum 0.1, the same running-average update); num_batches_tracked,
// which PyTorch reads only when momentum is None, counts the training
// batches the layer saw: one per optimiser step.
//
// The file's __metadata__ (ExportInfo.Metadata; all values are strings)
// describes the model and its input:
//
//	format                     "pt"
//	patchwise_format_version   ExportFormatVersion ("1")
//	patchwise_version          the module version that wrote the file
//	architecture               the layer list above, in words
//	pretext                    the pretext that trained the encoder, e.g. "relpos"
//	checkpoint                 the checkpoint directory's name, e.g. "ckpt-step-00000400"
//	checkpoint_step            the optimiser steps done, e.g. "400"
//	dataset_id                 the SHA-256 ID of the training dataset
//	channels                   input channels C, "1" or "3"
//	widths                     the blocks' output channels, a JSON array: "[32,64,128,256]"
//	input_size                 the side S the encoder was trained on, in pixels
//	input_layout               "NCHW float32" (PyTorch's order)
//	input_range                how pixels become values: "pixel/255 in [0,1]"
//	image_side                 the side of the training dataset's images (when known)
//	input_resize               how images became S×S: exact area averaging
//	                           (augment.Resize; not PIL's BOX filter, which
//	                           differs for ratios that are not whole numbers)
//	input_normalize            "none", "mean" or "std": the per-image, per-channel
//	                           normalisation after scaling (relpos crops: its transform)
//	bn_eps, bn_momentum        the batch norm's settings, "1e-05" and "0.1"
//	feature                    how the feature vector is made
//	feature_dim                its length: the last width
//
// A ResNet encoder (pretext.EncoderConfig.Arch) is written under
// torchvision's key names and layouts, those of
// torchvision.models.resnet18() and resnet34() without their fc layer:
//
//	conv1.weight                              F32 [W_0, C, K, K]  the stem's conv, OIHW (K 7 or 3)
//	bn1.{weight,bias,running_mean,running_var} F32 [W_0]
//	bn1.num_batches_tracked                   I64 []
//	layerS.B.conv1.weight                     F32 [W, W_in, 3, 3]  block B (from 0) of stage S (from 1)
//	layerS.B.bn1.…, layerS.B.conv2.weight, layerS.B.bn2.…
//	layerS.0.downsample.0.weight              F32 [W, W_in, 1, 1]  the projection shortcut, where there is one
//	layerS.0.downsample.1.…                   its batch norm
//
// so that load_state_dict(strict=False) on torchvision's model misses
// only fc.weight and fc.bias: exactly so with the ImageNet stem at width
// 1, and on a torchvision ResNet built with the export's widths and stem
// otherwise (examples/load_torchvision.py). Such a file is version 2 and
// its metadata add
//
//	arch                       "resnet18" or "resnet34"
//	stem                       "imagenet" (conv 7x7/2, max pool 3x3/2) or "small" (conv 3x3/1, no pool)
//	widths                     the four stages' widths
//	feature                    the mean over H and W of layer4's output (torchvision: fc's input)
//
// The tensors' data follow the header in sorted key order with no gaps;
// the header is padded with spaces to a multiple of 8 bytes.
const (
	// ExportFormatVersion is the version of the export's key names,
	// layouts and metadata, recorded as the patchwise_format_version
	// metadata entry: 2 since ResNet encoders are exported. An export of
	// the reference encoder is as it was in version 1 and says 1, so that
	// readers of version 1 keep reading it and refuse a ResNet.
	ExportFormatVersion = 2
	// exportVersionReference is the version of a reference encoder's export.
	exportVersionReference = 1
)

// ExportOptions are ExportEncoder's settings.
type ExportOptions struct {
	// Force replaces an existing output file (atomically). Without it
	// ExportEncoder refuses to write over anything.
	Force bool
}

// ExportInfo describes a written encoder export.
type ExportInfo struct {
	Out        string // the file written
	Checkpoint string // the checkpoint directory it was made from
	Pretext    string
	Step       int
	DatasetID  string
	Channels   int   // input channels
	Size       int   // input side, pixels
	Widths     []int // the blocks' output channels
	Tensors    int   // tensors in the file
	Bytes      int64 // the file's size
	// Metadata is the file's __metadata__ (see ExportFormatVersion).
	Metadata map[string]string
}

// ExportEncoder writes the encoder of the checkpoint ckpt to out as a
// safetensors file with PyTorch's key names and layouts (described at
// ExportFormatVersion), for any pretext. ckpt is a checkpoint directory
// (ckpt-step-NNNNNNNN) or a training directory, whose latest checkpoint is then
// used.
//
// The checkpoint is read and checked as LoadEncoder does (every checksum;
// the encoder's tensors against its saved config). Errors that describe it
// are *CheckpointError naming it (errors.Is with ErrCheckpointMissing,
// ErrCheckpointCorrupt, ErrCheckpointArchitecture for one that holds no
// encoder, …); a training directory without checkpoints gives an error
// matching ErrNoCheckpoint. An encoder with a NaN or infinite value is
// refused.
//
// The file is written to a temporary file beside out, synced, and moved
// into place, and the directory synced: a crash leaves the old out (or
// none) or the new one, never a part. If out exists and opts.Force is
// false, it returns an error matching fs.ErrExist and writes nothing.
func ExportEncoder(ckpt, out string, opts ExportOptions) (*ExportInfo, error) {
	if out == "" {
		return nil, errors.New("pipeline: export: no output file given")
	}
	if !opts.Force {
		// Before the work; fsutil.WriteNew checks again, atomically.
		if _, err := os.Lstat(out); err == nil {
			return nil, fmt.Errorf("pipeline: export: %q: %w", out, fs.ErrExist)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("pipeline: export: %w", err)
		}
	}
	fe, err := LoadEncoder(ckpt)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*ExportInfo, error) {
		return nil, fmt.Errorf("pipeline: export %q: %w", fe.Name, err)
	}
	e := fe.Encoder
	for _, p := range slices.Concat(e.Params(), e.Buffers()) {
		for i, v := range p.Value.Data {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return fail(fmt.Errorf("tensor %q holds %v at index %d", p.Name, v, i))
			}
		}
	}
	var ts map[string]safetensors.Tensor
	if e.Config.IsResNet() {
		ts, err = torchResNetTensors(e, fe.Step)
	} else {
		ts, err = torchEncoderTensors(e, fe.Step)
	}
	if err != nil {
		return fail(err)
	}
	meta := exportMetadata(fe)
	var buf bytes.Buffer
	if err := safetensors.Write(&buf, ts, meta); err != nil {
		return fail(err)
	}
	fill := func(w io.Writer) error {
		_, err := w.Write(buf.Bytes())
		return err
	}
	if opts.Force {
		err = fsutil.Replace(out, fill)
	} else {
		err = fsutil.WriteNew(out, fill)
	}
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("pipeline: export: %q: %w", out, fs.ErrExist)
		}
		return nil, fmt.Errorf("pipeline: export %q to %q: %w", fe.Name, out, err)
	}
	return &ExportInfo{
		Out: out, Checkpoint: fe.Name, Pretext: fe.Pretext, Step: fe.Step, DatasetID: fe.DatasetID,
		Channels: e.Config.Channels, Size: fe.Size, Widths: slices.Clone(e.Config.Widths),
		Tensors: len(ts), Bytes: int64(buf.Len()), Metadata: meta,
	}, nil
}

// torchEncoderTensors returns e's tensors under PyTorch's names and
// layouts (see ExportFormatVersion), num_batches_tracked set to steps. It
// returns an error if a block is not the reference block.
func torchEncoderTensors(e *pretext.Encoder, steps int) (map[string]safetensors.Tensor, error) {
	ts := map[string]safetensors.Tensor{}
	in := e.Config.Channels
	for k, b := range e.Blocks {
		if len(b.Layers) != 3 {
			return nil, fmt.Errorf("encoder block %d has %d layers, want conv, batch norm, pool", k+1, len(b.Layers))
		}
		conv, ok1 := b.Layers[0].(*nn.Conv2D)
		bn, ok2 := b.Layers[1].(*nn.BatchNorm)
		pool, ok3 := b.Layers[2].(*nn.MaxPool2D)
		switch {
		case !ok1 || !ok2 || !ok3:
			return nil, fmt.Errorf("encoder block %d is %T, %T, %T: want conv, batch norm, max pool", k+1, b.Layers[0], b.Layers[1], b.Layers[2])
		case conv.K != 3 || conv.Stride != 1 || conv.Pad != 1 || conv.InC != in:
			return nil, fmt.Errorf("encoder block %d: conv %d→%d k %d stride %d pad %d: want %d→… 3×3 stride 1 pad 1", k+1, conv.InC, conv.OutC, conv.K, conv.Stride, conv.Pad, in)
		case !bn.ReLU || bn.C != conv.OutC:
			return nil, fmt.Errorf("encoder block %d: batch norm of %d channels (ReLU %v) after a conv to %d", k+1, bn.C, bn.ReLU, conv.OutC)
		case pool.K != 2 || pool.Stride != 2:
			return nil, fmt.Errorf("encoder block %d: max pool %d stride %d, want 2 stride 2", k+1, pool.K, pool.Stride)
		}
		out := conv.OutC
		// [Out, K, K, In] → [Out, In, K, K].
		w := conv.Weight.Value.Data
		kk := conv.K * conv.K
		oihw := make([]float32, len(w))
		for o := range out {
			for t := range kk {
				for i := range in {
					oihw[(o*in+i)*kk+t] = w[(o*kk+t)*in+i]
				}
			}
		}
		bias := make([]float32, out)
		if conv.Bias != nil {
			copy(bias, conv.Bias.Value.Data)
		}
		c, n := strconv.Itoa(4*k), strconv.Itoa(4*k+1)
		ts["body."+c+".weight"] = safetensors.F32(oihw, out, in, conv.K, conv.K)
		ts["body."+c+".bias"] = safetensors.F32(bias, out)
		ts["body."+n+".weight"] = safetensors.F32(bn.Weight.Value.Data, out)
		ts["body."+n+".bias"] = safetensors.F32(bn.Bias.Value.Data, out)
		ts["body."+n+".running_mean"] = safetensors.F32(bn.RunningMean.Value.Data, out)
		ts["body."+n+".running_var"] = safetensors.F32(bn.RunningVar.Value.Data, out)
		ts["body."+n+".num_batches_tracked"] = safetensors.I64([]int64{int64(steps)})
		in = out
	}
	return ts, nil
}

// torchResNetTensors returns the tensors of the ResNet e under
// torchvision's names and layouts (see ExportFormatVersion): its
// parameters' and buffers' names without the "encoder." prefix, kernels
// transposed to OIHW, and num_batches_tracked set to steps for each batch
// norm.
func torchResNetTensors(e *pretext.Encoder, steps int) (map[string]safetensors.Tensor, error) {
	ts := map[string]safetensors.Tensor{}
	const prefix = "encoder."
	for _, p := range slices.Concat(e.Params(), e.Buffers()) {
		key, ok := strings.CutPrefix(p.Name, prefix)
		if !ok {
			return nil, fmt.Errorf("encoder tensor %q is not named %s…", p.Name, prefix)
		}
		if _, dup := ts[key]; dup {
			return nil, fmt.Errorf("encoder tensor %q appears twice", p.Name)
		}
		v, shape := p.Value.Data, p.Value.Shape
		if len(shape) == 4 { // a kernel [Out, K, K, In] → [Out, In, K, K]
			out, kh, kw, in := shape[0], shape[1], shape[2], shape[3]
			oihw := make([]float32, len(v))
			for o := range out {
				for t := range kh * kw {
					for i := range in {
						oihw[(o*in+i)*kh*kw+t] = v[(o*kh*kw+t)*in+i]
					}
				}
			}
			ts[key] = safetensors.F32(oihw, out, in, kh, kw)
			continue
		}
		ts[key] = safetensors.F32(v, shape...)
		if bn, ok := strings.CutSuffix(key, ".running_mean"); ok {
			ts[bn+".num_batches_tracked"] = safetensors.I64([]int64{int64(steps)})
		}
	}
	return ts, nil
}

// exportMetadata returns the __metadata__ of fe's export.
func exportMetadata(fe *FrozenEncoder) map[string]string {
	e := fe.Encoder
	widths, _ := json.Marshal(e.Config.Widths)
	bn := e.Blocks[0].Layers[1].(*nn.BatchNorm) // checked by torchEncoderTensors
	s := strconv.Itoa(fe.Size)
	images := "images"
	if fe.ImageSide > 0 {
		side := strconv.Itoa(fe.ImageSide)
		images = "the dataset's " + side + "x" + side + " images"
	}
	normalize := fe.Normalize
	if normalize == "" {
		normalize = "none"
	}
	m := map[string]string{
		"format":                   "pt",
		"patchwise_format_version": strconv.Itoa(exportVersionReference),
		"patchwise_version":        Version(),
		"architecture": fmt.Sprintf("%d x [Conv2d(3x3, padding 1) -> BatchNorm2d -> ReLU -> MaxPool2d(2)], widths %s",
			len(e.Blocks), widths),
		"pretext":         fe.Pretext,
		"checkpoint":      filepath.Base(fe.Name),
		"checkpoint_step": strconv.Itoa(fe.Step),
		"dataset_id":      fe.DatasetID,
		"channels":        strconv.Itoa(e.Config.Channels),
		"widths":          string(widths),
		"input_size":      s,
		"input_layout":    "NCHW float32",
		"input_range":     "pixel/255 in [0,1]",
		"input_resize": images + " resized to " + s + "x" + s + " by area averaging (augment.Resize): along each axis, " +
			"output pixel j of m averages the input span [j*n/m, (j+1)*n/m) of n pixels, each weighted by its overlap",
		"input_normalize": normalize,
		"bn_eps":          strconv.FormatFloat(bn.Eps, 'g', -1, 64),
		"bn_momentum":     strconv.FormatFloat(bn.Momentum, 'g', -1, 64),
		"feature":         "mean over H and W of body(x), in eval mode",
		"feature_dim":     strconv.Itoa(e.Dim()),
	}
	if fe.ImageSide > 0 {
		m["image_side"] = strconv.Itoa(fe.ImageSide)
	}
	if c := e.Config; c.IsResNet() {
		m["patchwise_format_version"] = strconv.Itoa(ExportFormatVersion)
		m["arch"], m["stem"] = c.Arch, c.Stem
		stem := "conv1 3x3 stride 1 -> bn1 -> relu (no max pool)"
		if c.Stem == pretext.StemImageNet {
			stem = "conv1 7x7 stride 2 -> bn1 -> relu -> maxpool 3x3 stride 2 pad 1"
		}
		m["architecture"] = fmt.Sprintf("torchvision %s without fc: %s -> layer1..layer4 of BasicBlock, stage widths %s", c.Arch, stem, widths)
		m["feature"] = "mean over H and W of layer4's output, in eval mode (torchvision: the input of fc)"
	}
	return m
}
