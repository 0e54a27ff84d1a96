package pipeline

import (
	"bytes"
	"cmp"
	"encoding/binary"
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
	"unicode/utf8"

	"github.com/patchwise-ml/patchwise/internal/fsutil"
	"github.com/patchwise-ml/patchwise/nn"
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
// The tensors' data follow the header in sorted key order with no gaps;
// the header is padded with spaces to a multiple of 8 bytes.
const (
	// ExportFormatVersion is the version of the export's key names,
	// layouts and metadata, recorded as the patchwise_format_version
	// metadata entry.
	ExportFormatVersion = 1

	// MaxSafetensorsHeader is the largest JSON header ReadSafetensors
	// accepts, in bytes: the limit of the reference implementation.
	MaxSafetensorsHeader = 100_000_000
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
// (ckpt-step-NNNNNNNN) or a run directory, whose latest checkpoint is then
// used.
//
// The checkpoint is read and checked as LoadEncoder does (every checksum;
// the encoder's tensors against its saved config). Errors that describe it
// are *CheckpointError naming it (errors.Is with ErrCheckpointMissing,
// ErrCheckpointCorrupt, ErrCheckpointArchitecture for one that holds no
// encoder, …); a run directory without checkpoints gives an error
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
	ts, err := torchEncoderTensors(e, fe.Step)
	if err != nil {
		return fail(err)
	}
	meta := exportMetadata(fe)
	var buf bytes.Buffer
	if err := writeSafetensors(&buf, ts, meta); err != nil {
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

// safeTensor is one tensor to write: its key, dtype, shape and raw
// little-endian bytes.
type safeTensor struct {
	name  string
	dtype string
	shape []int
	data  []byte
}

// torchEncoderTensors returns e's tensors under PyTorch's names and
// layouts (see ExportFormatVersion), num_batches_tracked set to steps. It
// returns an error if a block is not the reference block.
func torchEncoderTensors(e *pretext.Encoder, steps int) ([]safeTensor, error) {
	var ts []safeTensor
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
		ts = append(ts,
			f32Tensor("body."+c+".weight", oihw, out, in, conv.K, conv.K),
			f32Tensor("body."+c+".bias", bias, out),
			f32Tensor("body."+n+".weight", bn.Weight.Value.Data, out),
			f32Tensor("body."+n+".bias", bn.Bias.Value.Data, out),
			f32Tensor("body."+n+".running_mean", bn.RunningMean.Value.Data, out),
			f32Tensor("body."+n+".running_var", bn.RunningVar.Value.Data, out),
			safeTensor{name: "body." + n + ".num_batches_tracked", dtype: "I64", shape: []int{},
				data: binary.LittleEndian.AppendUint64(nil, uint64(steps))},
		)
		in = out
	}
	return ts, nil
}

func f32Tensor(name string, v []float32, shape ...int) safeTensor {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return safeTensor{name: name, dtype: "F32", shape: shape, data: b}
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
	if fe.Pretext == "relpos" {
		images = "crops of " + images
	}
	normalize := fe.Normalize
	if normalize == "" {
		normalize = "none"
	}
	m := map[string]string{
		"format":                   "pt",
		"patchwise_format_version": strconv.Itoa(ExportFormatVersion),
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
	return m
}

// safetensorsDTypes gives the size in bytes of one value of each dtype of
// the safetensors format.
var safetensorsDTypes = map[string]int{
	"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1,
	"I16": 2, "U16": 2, "F16": 2, "BF16": 2,
	"I32": 4, "U32": 4, "F32": 4,
	"I64": 8, "U64": 8, "F64": 8,
}

// safetensorsEntry is a tensor's entry in a safetensors header.
type safetensorsEntry struct {
	DType   string    `json:"dtype"`
	Shape   []int     `json:"shape"`
	Offsets [2]uint64 `json:"data_offsets"`
}

// writeSafetensors writes ts and meta to w in the safetensors format:
// the header's length (uint64, little-endian), the JSON header padded with
// spaces to a multiple of 8 bytes, then the tensors' data in sorted key
// order. It returns an error for a duplicate or reserved key, an unknown
// dtype or data whose length does not match the shape.
func writeSafetensors(w io.Writer, ts []safeTensor, meta map[string]string) error {
	ts = slices.Clone(ts)
	slices.SortFunc(ts, func(a, b safeTensor) int { return cmp.Compare(a.name, b.name) })
	header := make(map[string]any, len(ts)+1)
	if len(meta) > 0 {
		header["__metadata__"] = meta
	}
	var off uint64
	for i, t := range ts {
		size, ok := safetensorsDTypes[t.dtype]
		switch {
		case !ok:
			return fmt.Errorf("safetensors: tensor %q: unknown dtype %q", t.name, t.dtype)
		case t.name == "__metadata__" || i > 0 && ts[i-1].name == t.name:
			return fmt.Errorf("safetensors: duplicate or reserved tensor name %q", t.name)
		}
		n := uint64(size)
		for _, d := range t.shape {
			n *= uint64(d)
		}
		if n != uint64(len(t.data)) {
			return fmt.Errorf("safetensors: tensor %q: %d bytes of data for %s %v", t.name, len(t.data), t.dtype, t.shape)
		}
		shape := t.shape
		if shape == nil {
			shape = []int{}
		}
		header[t.name] = safetensorsEntry{DType: t.dtype, Shape: shape, Offsets: [2]uint64{off, off + n}}
		off += n
	}
	var hb bytes.Buffer
	enc := json.NewEncoder(&hb)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(header); err != nil {
		return fmt.Errorf("safetensors: header: %w", err)
	}
	h := bytes.TrimSuffix(hb.Bytes(), []byte("\n"))
	if pad := (8 - len(h)%8) % 8; pad > 0 {
		h = append(h, bytes.Repeat([]byte(" "), pad)...)
	}
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(h)))
	if _, err := w.Write(n[:]); err != nil {
		return err
	}
	if _, err := w.Write(h); err != nil {
		return err
	}
	for _, t := range ts {
		if _, err := w.Write(t.data); err != nil {
			return err
		}
	}
	return nil
}

// Safetensor is one tensor of a safetensors file.
type Safetensor struct {
	DType string // the safetensors dtype, such as "F32" or "I64"
	Shape []int  // outermost first; [] for a scalar
	Data  []byte // the values, row-major, little-endian: Numel × the dtype's size bytes
}

// Numel returns the number of values: the product of Shape (1 for a
// scalar).
func (t Safetensor) Numel() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// Float32s returns the values of an F32 tensor; it returns an error for
// another dtype.
func (t Safetensor) Float32s() ([]float32, error) {
	if t.DType != "F32" {
		return nil, fmt.Errorf("pipeline: safetensors: dtype %s, not F32", t.DType)
	}
	v := make([]float32, len(t.Data)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.Data[4*i:]))
	}
	return v, nil
}

// Int64s returns the values of an I64 tensor; it returns an error for
// another dtype.
func (t Safetensor) Int64s() ([]int64, error) {
	if t.DType != "I64" {
		return nil, fmt.Errorf("pipeline: safetensors: dtype %s, not I64", t.DType)
	}
	v := make([]int64, len(t.Data)/8)
	for i := range v {
		v[i] = int64(binary.LittleEndian.Uint64(t.Data[8*i:]))
	}
	return v, nil
}

// SafetensorsError reports bytes that are not a valid safetensors file.
// Test for it with errors.As.
type SafetensorsError struct {
	Path string // the file, or "" for DecodeSafetensors
	Msg  string // what is wrong
}

func (e *SafetensorsError) Error() string {
	if e.Path == "" {
		return "pipeline: safetensors: " + e.Msg
	}
	return fmt.Sprintf("pipeline: safetensors %q: %s", e.Path, e.Msg)
}

// ReadSafetensors reads the safetensors file at path and returns its
// tensors by name and its __metadata__ (nil if it has none). It checks
// the header's length (at most MaxSafetensorsHeader) against the file's
// size before reading the rest, then checks the file as DecodeSafetensors
// does. Errors about the file's contents are *SafetensorsError.
func ReadSafetensors(path string) (map[string]Safetensor, map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("pipeline: safetensors: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("pipeline: safetensors: %w", err)
	}
	size := fi.Size()
	var n [8]byte
	if _, err := io.ReadFull(f, n[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, nil, &SafetensorsError{Path: path, Msg: fmt.Sprintf("%d bytes: shorter than the 8-byte header length", size)}
		}
		return nil, nil, fmt.Errorf("pipeline: safetensors %q: %w", path, err)
	}
	hlen := binary.LittleEndian.Uint64(n[:])
	if err := checkHeaderLen(hlen, uint64(size)); err != nil {
		return nil, nil, &SafetensorsError{Path: path, Msg: err.Error()}
	}
	b := make([]byte, size)
	copy(b, n[:])
	if _, err := io.ReadFull(f, b[8:]); err != nil {
		return nil, nil, fmt.Errorf("pipeline: safetensors %q: %w", path, err)
	}
	ts, meta, err := DecodeSafetensors(b)
	var se *SafetensorsError
	if errors.As(err, &se) {
		se.Path = path
	}
	return ts, meta, err
}

// checkHeaderLen checks a header length against the file size.
func checkHeaderLen(hlen, size uint64) error {
	switch {
	case hlen > MaxSafetensorsHeader:
		return fmt.Errorf("header length %d exceeds the limit of %d bytes", hlen, MaxSafetensorsHeader)
	case hlen < 2:
		return fmt.Errorf("header length %d: too short for a JSON object", hlen)
	case 8+hlen > size:
		return fmt.Errorf("header length %d, but the file has %d bytes after the length: truncated", hlen, size-8)
	}
	return nil
}

// DecodeSafetensors parses b, a whole safetensors file, and returns its
// tensors by name and its __metadata__ (nil if it has none). The tensors'
// Data share b's memory.
//
// It checks what the reference implementation checks, and returns a
// *SafetensorsError on the first problem: the header's length (at most
// MaxSafetensorsHeader, within b); a header that is one JSON object,
// valid UTF-8, followed by nothing but whitespace, with no duplicate keys
// or unknown fields; __metadata__ a map of strings to strings; for each
// tensor a known dtype, non-negative dimensions and data_offsets [begin,
// end] within the data whose length matches its shape; and the tensors,
// taken in offset order, covering the data exactly, with no overlap and no
// gap.
func DecodeSafetensors(b []byte) (map[string]Safetensor, map[string]string, error) {
	bad := func(format string, args ...any) (map[string]Safetensor, map[string]string, error) {
		return nil, nil, &SafetensorsError{Msg: fmt.Sprintf(format, args...)}
	}
	if len(b) < 8 {
		return bad("%d bytes: shorter than the 8-byte header length", len(b))
	}
	hlen := binary.LittleEndian.Uint64(b)
	if err := checkHeaderLen(hlen, uint64(len(b))); err != nil {
		return bad("%v", err)
	}
	header, data := b[8:8+hlen], b[8+hlen:]
	if !utf8.Valid(header) {
		return bad("header is not valid UTF-8")
	}
	if header[0] != '{' {
		return bad("header does not start with '{'")
	}
	dec := json.NewDecoder(bytes.NewReader(header))
	dec.DisallowUnknownFields()
	if _, err := dec.Token(); err != nil {
		return bad("header: %v", err)
	}
	type entry struct {
		name    string
		dtype   string
		shape   []int
		offsets [2]uint64
	}
	var entries []entry
	var meta map[string]string
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return bad("header: %v", err)
		}
		name := tok.(string) // object keys are strings
		if seen[name] {
			return bad("header: duplicate key %q", name)
		}
		seen[name] = true
		if name == "__metadata__" {
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return bad("header: __metadata__: %v", err)
			}
			if err := json.Unmarshal(raw, &meta); err != nil || meta == nil {
				return bad("header: __metadata__ is not an object of strings to strings")
			}
			if err := checkDuplicateKeys(raw); err != nil {
				return bad("header: __metadata__: %v", err)
			}
			continue
		}
		var e struct {
			DType   *string   `json:"dtype"`
			Shape   *[]int    `json:"shape"`
			Offsets *[]uint64 `json:"data_offsets"`
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return bad("header: tensor %q: %v", name, err)
		}
		if err := checkDuplicateKeys(raw); err != nil {
			return bad("header: tensor %q: %v", name, err)
		}
		inner := json.NewDecoder(bytes.NewReader(raw))
		inner.DisallowUnknownFields()
		if err := inner.Decode(&e); err != nil {
			return bad("header: tensor %q: %v", name, err)
		}
		if e.DType == nil || e.Shape == nil || e.Offsets == nil {
			return bad("header: tensor %q: want dtype, shape and data_offsets", name)
		}
		if len(*e.Offsets) != 2 {
			return bad("header: tensor %q: data_offsets %v: want [begin, end]", name, *e.Offsets)
		}
		entries = append(entries, entry{name: name, dtype: *e.DType, shape: *e.Shape, offsets: [2]uint64((*e.Offsets)[:2])})
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return bad("header: %v", err)
	}
	if rest := header[dec.InputOffset():]; len(bytes.TrimLeft(rest, " \t\r\n")) > 0 {
		return bad("header: data after the JSON object")
	}

	ts := make(map[string]Safetensor, len(entries))
	for _, e := range entries {
		size, ok := safetensorsDTypes[e.dtype]
		if !ok {
			return bad("tensor %q: unknown dtype %q", e.name, e.dtype)
		}
		n := uint64(size)
		for _, d := range e.shape {
			if d < 0 {
				return bad("tensor %q: negative dimension in shape %v", e.name, e.shape)
			}
			if d > 0 && n > uint64(len(data))/uint64(d) {
				return bad("tensor %q: shape %v needs more than the %d bytes of data", e.name, e.shape, len(data))
			}
			n *= uint64(d)
		}
		begin, end := e.offsets[0], e.offsets[1]
		switch {
		case begin > end || end > uint64(len(data)):
			return bad("tensor %q: data_offsets [%d, %d] outside the %d bytes of data", e.name, begin, end, len(data))
		case end-begin != n:
			return bad("tensor %q: data_offsets [%d, %d] hold %d bytes: %s %v needs %d", e.name, begin, end, end-begin, e.dtype, e.shape, n)
		}
		shape := e.shape
		if shape == nil {
			shape = []int{}
		}
		ts[e.name] = Safetensor{DType: e.dtype, Shape: shape, Data: data[begin:end:end]}
	}
	slices.SortFunc(entries, func(a, b entry) int {
		return cmp.Or(cmp.Compare(a.offsets[0], b.offsets[0]), cmp.Compare(a.offsets[1], b.offsets[1]))
	})
	var at uint64
	for _, e := range entries {
		if e.offsets[0] != at {
			what := "overlaps the one before"
			if e.offsets[0] > at {
				what = "leaves a gap before it"
			}
			return bad("tensor %q: data_offsets [%d, %d] %s (which ends at %d)", e.name, e.offsets[0], e.offsets[1], what, at)
		}
		at = e.offsets[1]
	}
	if at != uint64(len(data)) {
		return bad("the tensors cover %d of the %d bytes of data", at, len(data))
	}
	return ts, meta, nil
}

// checkDuplicateKeys returns an error if the JSON object raw repeats a key
// at its top level.
func checkDuplicateKeys(raw []byte) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return errors.New("not a JSON object")
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		k := tok.(string)
		if seen[k] {
			return fmt.Errorf("duplicate key %q", k)
		}
		seen[k] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return err
		}
	}
	return nil
}
