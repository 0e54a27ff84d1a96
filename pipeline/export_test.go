package pipeline

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io/fs"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/patchwise-ml/patchwise/augment"
	"github.com/patchwise-ml/patchwise/data"
	"github.com/patchwise-ml/patchwise/nn"
	"github.com/patchwise-ml/patchwise/nn/safetensors"
	"github.com/patchwise-ml/patchwise/pipeline/checkpoint"
	"github.com/patchwise-ml/patchwise/pretext"
)

// exportTrained pretrains cfg (from tinyConfig, edited by edit) and
// returns its run directory.
func exportTrained(t *testing.T, name string, edit func(*PretrainConfig)) string {
	t.Helper()
	cfg := tinyConfig(t, name)
	cfg.Steps, cfg.ValEvery, cfg.CheckpointEvery = 3, -1, -1
	if edit != nil {
		edit(&cfg)
	}
	if _, err := Pretrain(context.Background(), cfg, false, nil); err != nil {
		t.Fatal(err)
	}
	return cfg.Out
}

// writeColorDataset writes train and val side×side RGB images of 2
// classes: a red horizontal or a blue vertical gradient, with noise.
func writeColorDataset(t *testing.T, train, val, side int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), fmt.Sprint("rgb", side))
	w, err := data.Create(dir, data.Preprocess{Size: side, Channels: 3}, []string{"red", "blue"}, data.Provenance{Format: "generated"})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(11, 12))
	pix := make([]uint8, side*side*3)
	for i := range train + val {
		label := i % 2
		for y := range side {
			for x := range side {
				p := pix[(y*side+x)*3:][:3]
				for c := range p {
					p[c] = uint8(rng.IntN(60))
				}
				if label == 0 {
					p[0] += uint8(x * 192 / side)
				} else {
					p[2] += uint8(y * 192 / side)
				}
			}
		}
		split := data.Train
		if i >= train {
			split = data.Val
		}
		if err := w.Add(split, data.Record{Pixels: pix, Label: label, Origin: fmt.Sprint("gen#", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// torchPython returns the Python that has PyTorch, skipping the test when
// there is none, unless PATCHWISE_REQUIRE_TORCH=1 (then it fails).
func torchPython(t *testing.T) string {
	t.Helper()
	const py = "/usr/bin/python3"
	out, err := exec.Command(py, "-c", "import torch").CombinedOutput()
	if err != nil {
		msg := fmt.Sprintf("%s cannot import torch (apt-get install python3-torch): %v\n%s", py, err, out)
		if os.Getenv("PATCHWISE_REQUIRE_TORCH") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return py
}

// writeRaw writes x's values to a new file as raw little-endian float32
// and returns its path.
func writeRaw(t *testing.T, x *nn.Tensor) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "x.f32")
	b := make([]byte, 4*x.Len())
	for i, v := range x.Data {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// torchFeatures runs examples/load_encoder.py on export with the input
// arguments args and returns the n×dim features it writes.
func torchFeatures(t *testing.T, py, export string, n, dim int, args ...string) []float32 {
	t.Helper()
	out := filepath.Join(t.TempDir(), "f.f32")
	args = append([]string{filepath.Join("..", "examples", "load_encoder.py"), export, "--raw-out", out, "--threads", "1"}, args...)
	if msg, err := exec.Command(py, args...).CombinedOutput(); err != nil {
		t.Fatalf("load_encoder.py: %v\n%s", err, msg)
	}
	fb, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(fb) != 4*n*dim {
		t.Fatalf("load_encoder.py wrote %d bytes of features, want %d", len(fb), 4*n*dim)
	}
	f := make([]float32, len(fb)/4)
	for i := range f {
		f[i] = math.Float32frombits(binary.LittleEndian.Uint32(fb[4*i:]))
	}
	return f
}

// compareFeatures fails t if got and want differ by more than 1e-4
// anywhere, and returns the largest difference.
func compareFeatures(t *testing.T, what string, got, want []float32) float64 {
	t.Helper()
	var maxAbs, maxRef float64
	for i := range want {
		maxAbs = max(maxAbs, math.Abs(float64(got[i])-float64(want[i])))
		maxRef = max(maxRef, math.Abs(float64(want[i])))
	}
	t.Logf("%s: max |torch − patchwise| = %.3g (max |feature| %.3g)", what, maxAbs, maxRef)
	if maxRef == 0 {
		t.Fatalf("%s: all features are zero: the comparison proves nothing", what)
	}
	if maxAbs > 1e-4 || math.IsNaN(maxAbs) {
		t.Errorf("%s: features differ by up to %g (tolerance 1e-4 absolute)", what, maxAbs)
	}
	return maxAbs
}

// TestExportMatchesTorch exports trained encoders with non-default widths
// and input sizes and checks that PyTorch, loading the file with
// strict=True through examples/load_encoder.py, computes the features
// Patchwise computes (in evaluation mode, with the trained running
// statistics) within 1e-4 absolute: for raw encoder inputs, and for PNG
// files that the script prepares by the export's input convention (area
// resize to the input size, the pretext's normalisation).
func TestExportMatchesTorch(t *testing.T) {
	py := torchPython(t)
	for _, c := range []struct {
		name, pretext string
		widths        []int
		size          int
		rgb           bool
		normal        bool // raw inputs standardised, as relpos sees them, rather than in [0, 1]
	}{
		{"supervised-rgb", "supervised", []int{6, 12, 10}, 24, true, false},
		{"relpos-grey", "relpos", []int{5, 7}, 20, false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			run := exportTrained(t, c.pretext, func(cfg *PretrainConfig) {
				cfg.Encoder.Widths, cfg.Size, cfg.Steps = c.widths, c.size, 8
				if c.rgb {
					cfg.Dataset = writeColorDataset(t, 64, 16, 16)
				}
			})
			out := filepath.Join(t.TempDir(), "enc.safetensors")
			info, err := ExportEncoder(run, out, ExportOptions{})
			if err != nil {
				t.Fatal(err)
			}
			fe, err := LoadEncoder(run)
			if err != nil {
				t.Fatal(err)
			}
			// The running statistics moved away from their initial 0 and 1.
			bn := fe.Encoder.Blocks[len(c.widths)-1].Layers[1].(*nn.BatchNorm)
			if bn.RunningMean.Value.Data[0] == 0 || bn.RunningVar.Value.Data[0] == 1 {
				t.Fatalf("running statistics untrained: mean %v var %v", bn.RunningMean.Value.Data, bn.RunningVar.Value.Data)
			}
			ch, s, dim := info.Channels, info.Size, fe.Encoder.Dim()
			if s != c.size {
				t.Fatalf("input size %d, want %d", s, c.size)
			}
			rng := rand.New(rand.NewPCG(5, 6))

			const n = 12
			x := nn.NewTensor(n, s, s, ch)
			for i := range x.Data {
				if c.normal {
					x.Data[i] = float32(rng.NormFloat64())
				} else {
					x.Data[i] = rng.Float32()
				}
			}
			want := slices.Clone(fe.Encoder.Features(x).Data)
			got := torchFeatures(t, py, out, n, dim, "--raw-in", writeRaw(t, x))
			compareFeatures(t, fmt.Sprintf("%s widths %v, %d raw inputs %dx%dx%d", c.pretext, c.widths, n, s, s, ch), got, want)

			// Image files of the dataset's side, prepared by the script.
			const m = 3
			side := fe.ImageSide
			xi := nn.NewTensor(m, s, s, ch)
			var files []string
			for k := range m {
				pix := make([]uint8, side*side*ch)
				for i := range pix {
					pix[i] = uint8(rng.IntN(256))
				}
				files = append(files, writePNG(t, pix, side, ch))
				src := augment.NewPatch(side, side, ch)
				augment.CropPatch(src, pix, side, side, ch, augment.Crop{Size: side})
				dst := augment.Patch{Pix: xi.Data[k*s*s*ch : (k+1)*s*s*ch], W: s, H: s, C: ch}
				augment.Resize(dst, src)
				switch fe.Normalize {
				case augment.NormMean:
					augment.SubtractMean(dst)
				case augment.NormStandardize:
					augment.Standardize(dst)
				}
			}
			want = slices.Clone(fe.Encoder.Features(xi).Data)
			got = torchFeatures(t, py, out, m, dim, files...)
			compareFeatures(t, fmt.Sprintf("%d PNG files %dx%d → %dx%d, normalize %q", m, side, side, s, s, fe.Normalize), got, want)
		})
	}
}

// writePNG writes side×side pixels of ch channels (1 or 3, channels-last)
// to a new PNG file and returns its path.
func writePNG(t *testing.T, pix []uint8, side, ch int) string {
	t.Helper()
	var img image.Image
	if ch == 1 {
		img = &image.Gray{Pix: pix, Stride: side, Rect: image.Rect(0, 0, side, side)}
	} else {
		rgba := image.NewNRGBA(image.Rect(0, 0, side, side))
		for i := range side * side {
			copy(rgba.Pix[4*i:], pix[3*i:3*i+3])
			rgba.Pix[4*i+3] = 255
		}
		img = rgba
	}
	f, err := os.CreateTemp(t.TempDir(), "img-*.png")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

// TestExportEachPretext exports a checkpoint of every pretext and checks
// the file against the encoder: the key set, shapes, transposed kernels,
// the other tensors bit for bit, the layout and the metadata.
func TestExportEachPretext(t *testing.T) {
	for _, name := range pretext.Names() {
		t.Run(name, func(t *testing.T) {
			run := exportTrained(t, name, nil)
			ckpt, err := checkpoint.Latest(run)
			if err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(t.TempDir(), "enc.safetensors")
			info, err := ExportEncoder(ckpt, out, ExportOptions{})
			if err != nil {
				t.Fatal(err)
			}
			fe, err := LoadEncoder(ckpt)
			if err != nil {
				t.Fatal(err)
			}
			checkExport(t, out, info, fe)
		})
	}
}

// checkExport checks the export at path against fe, written as info says.
func checkExport(t *testing.T, path string, info *ExportInfo, fe *FrozenEncoder) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(b)) != info.Bytes {
		t.Errorf("file has %d bytes, info says %d", len(b), info.Bytes)
	}
	hlen := binary.LittleEndian.Uint64(b)
	if hlen%8 != 0 {
		t.Errorf("header length %d is not a multiple of 8", hlen)
	}
	ts, meta, err := safetensors.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	e := fe.Encoder
	cfg := e.Config
	var keys []string
	in := cfg.Channels
	for k, w := range cfg.Widths {
		conv := e.Blocks[k].Layers[0].(*nn.Conv2D)
		bn := e.Blocks[k].Layers[1].(*nn.BatchNorm)
		c, n := fmt.Sprintf("body.%d.", 4*k), fmt.Sprintf("body.%d.", 4*k+1)
		keys = append(keys, c+"weight", c+"bias", n+"weight", n+"bias", n+"running_mean", n+"running_var", n+"num_batches_tracked")

		kernel := f32s(t, ts, c+"weight", w, in, 3, 3)
		for o := range w {
			for i := range in {
				for ky := range 3 {
					for kx := range 3 {
						got := kernel[((o*in+i)*3+ky)*3+kx]
						if want := conv.Weight.Value.Data[((o*3+ky)*3+kx)*in+i]; got != want {
							t.Fatalf("%sweight[%d, %d, %d, %d] = %v, want Patchwise's [%d, %d, %d, %d] = %v", c, o, i, ky, kx, got, o, ky, kx, i, want)
						}
					}
				}
			}
		}
		if bias := f32s(t, ts, c+"bias", w); slices.ContainsFunc(bias, func(v float32) bool { return v != 0 }) {
			t.Errorf("%sbias %v, want zeros", c, bias)
		}
		for suffix, p := range map[string]*nn.Param{"weight": bn.Weight, "bias": bn.Bias, "running_mean": bn.RunningMean, "running_var": bn.RunningVar} {
			if got := f32s(t, ts, n+suffix, w); !bitsEqual(got, p.Value.Data) {
				t.Errorf("%s%s = %v, want %v", n, suffix, got, p.Value.Data)
			}
		}
		nb := ts[n+"num_batches_tracked"]
		if v, err := nb.Int64s(); err != nil || len(nb.Shape) != 0 || len(v) != 1 || v[0] != int64(fe.Step) {
			t.Errorf("%snum_batches_tracked: shape %v values %v (%v), want the scalar %d", n, nb.Shape, v, err, fe.Step)
		}
		in = w
	}
	got := slices.Sorted(func(yield func(string) bool) {
		for k := range ts {
			if !yield(k) {
				return
			}
		}
	})
	slices.Sort(keys)
	if !slices.Equal(got, keys) {
		t.Errorf("keys %v\nwant %v", got, keys)
	}
	// The data lie in sorted key order.
	inb, _, err := safetensors.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	data := b[8+hlen:]
	at := 0
	for _, k := range keys {
		d := inb[k].Data
		if len(d) > 0 && &data[at] != &d[0] {
			t.Errorf("tensor %q does not start at byte %d of the data", k, at)
		}
		at += len(d)
	}

	wantMeta := map[string]string{
		"format": "pt", "patchwise_format_version": "1", "pretext": fe.Pretext,
		"checkpoint": filepath.Base(fe.Name), "checkpoint_step": strconv.Itoa(fe.Step), "dataset_id": fe.DatasetID,
		"channels": strconv.Itoa(cfg.Channels), "input_size": strconv.Itoa(fe.Size), "input_layout": "NCHW float32",
		"bn_eps": "1e-05", "bn_momentum": "0.1", "feature_dim": strconv.Itoa(e.Dim()),
	}
	for k, v := range wantMeta {
		if meta[k] != v {
			t.Errorf("metadata %q = %q, want %q", k, meta[k], v)
		}
	}
	var widths []int
	if err := json.Unmarshal([]byte(meta["widths"]), &widths); err != nil || !slices.Equal(widths, cfg.Widths) {
		t.Errorf("metadata widths %q, want %v", meta["widths"], cfg.Widths)
	}
	wantNorm := cmp.Or(fe.Normalize, "none")
	// Jigsaw standardises its tiles by default (relpos's 4-pixel crops of
	// the 16-pixel test images go to a 2-block encoder at their own size,
	// untransformed: pretext.PhotoTransform).
	if fe.Pretext == "jigsaw" && wantNorm != augment.NormStandardize {
		t.Errorf("jigsaw's encoder normalises by %q, want %q (augment.ModernDefaults)", fe.Normalize, augment.NormStandardize)
	}
	if meta["input_normalize"] != wantNorm {
		t.Errorf("input_normalize %q, want %q", meta["input_normalize"], wantNorm)
	}
	for _, k := range []string{"patchwise_version", "architecture", "input_range", "input_resize", "feature"} {
		if meta[k] == "" {
			t.Errorf("metadata %q is empty", k)
		}
	}
	if !maps.Equal(meta, info.Metadata) {
		t.Errorf("file metadata %v, info %v", meta, info.Metadata)
	}
}

// f32s returns the values of the F32 tensor name of ts, checking its shape.
func f32s(t *testing.T, ts map[string]safetensors.Tensor, name string, shape ...int) []float32 {
	t.Helper()
	st, ok := ts[name]
	if !ok {
		t.Fatalf("no tensor %q", name)
	}
	if !slices.Equal(st.Shape, shape) {
		t.Fatalf("tensor %q has shape %v, want %v", name, st.Shape, shape)
	}
	v, err := st.Float32s()
	if err != nil {
		t.Fatalf("tensor %q: %v", name, err)
	}
	return v
}

func TestExportRefusesOverwrite(t *testing.T) {
	run := exportTrained(t, "ae-linear", nil)
	dir := t.TempDir()
	out := filepath.Join(dir, "enc.safetensors")
	if err := os.WriteFile(out, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := ExportEncoder(run, out, ExportOptions{})
	if !errors.Is(err, fs.ErrExist) || !strings.Contains(err.Error(), out) {
		t.Fatalf("export over an existing file: %v, want fs.ErrExist naming it", err)
	}
	if b, _ := os.ReadFile(out); string(b) != "precious" {
		t.Fatalf("the existing file was changed to %q", b)
	}
	info, err := ExportEncoder(run, out, ExportOptions{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(out)
	if int64(len(first)) != info.Bytes {
		t.Fatalf("forced export: %d bytes, info says %d", len(first), info.Bytes)
	}
	// Forced again: the same bytes (the export is deterministic), and no
	// temporary files left beside it.
	if _, err := ExportEncoder(run, out, ExportOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(out); !bytes.Equal(again, first) {
		t.Error("exporting the same checkpoint twice gave different bytes")
	}
	if names := entries(t, dir); !slices.Equal(names, []string{"enc.safetensors"}) {
		t.Errorf("directory holds %v", names)
	}
}

func TestExportErrors(t *testing.T) {
	run := exportTrained(t, "supervised", nil)
	ckpt, err := checkpoint.Latest(run)
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	copyCkpt := func(name string) string {
		t.Helper()
		dst := filepath.Join(tmp, name, filepath.Base(ckpt))
		if err := os.MkdirAll(dst, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{checkpoint.ManifestFile, checkpoint.TensorsFile} {
			b, err := os.ReadFile(filepath.Join(ckpt, f))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dst, f), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dst
	}

	corrupt := copyCkpt("corrupt")
	zst := filepath.Join(corrupt, checkpoint.TensorsFile)
	b, _ := os.ReadFile(zst)
	b[len(b)/2] ^= 0x40
	os.WriteFile(zst, b, 0o644)

	// A checkpoint of a model without an encoder.
	rng, _ := nn.NewRNG(1)
	head := nn.NewLinear("head", 4, 2, rng)
	noEnc, err := checkpoint.Save(filepath.Join(tmp, "noenc"), checkpoint.State{Step: 1, Pretext: "supervised",
		Config: json.RawMessage(`{"encoder":{"channels":1,"widths":[4]},"size":16,"classes":2}`), Params: head.Params()})
	if err != nil {
		t.Fatal(err)
	}
	// A checkpoint of a pretext this build does not know.
	unknown, err := checkpoint.Save(filepath.Join(tmp, "unknown"), checkpoint.State{Step: 1, Pretext: "colourise",
		Config: json.RawMessage(`{"encoder":{"channels":1,"widths":[4]},"size":16}`), Params: head.Params()})
	if err != nil {
		t.Fatal(err)
	}

	// Encoder tensors of widths [4, 8] under a config that says [4, 9].
	wrong := copyCkpt("wrong")
	rewriteManifest(t, wrong, func(m map[string]any) {
		m["config"].(map[string]any)["encoder"].(map[string]any)["widths"] = []int{4, 9}
	})

	empty := filepath.Join(tmp, "empty")
	os.Mkdir(empty, 0o755)
	missingRun := filepath.Join(tmp, "missing")
	missingCkpt := filepath.Join(tmp, "run", checkpoint.DirName(7))

	for _, c := range []struct {
		name, ckpt string
		is         error
		mentions   []string
	}{
		{"missing run", missingRun, fs.ErrNotExist, []string{missingRun}},
		{"missing checkpoint", missingCkpt, checkpoint.ErrMissing, []string{missingCkpt}},
		{"no checkpoints", empty, checkpoint.ErrNone, []string{empty}},
		{"corrupt", corrupt, checkpoint.ErrCorrupt, []string{corrupt}},
		{"no encoder", noEnc, checkpoint.ErrArchitecture, []string{noEnc, "encoder"}},
		{"unknown pretext", unknown, pretext.ErrUnknown, []string{unknown, "colourise"}},
		{"architecture", wrong, checkpoint.ErrArchitecture, []string{wrong, "block2"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "enc.safetensors")
			_, err := ExportEncoder(c.ckpt, out, ExportOptions{})
			if !errors.Is(err, c.is) {
				t.Fatalf("error %v, want %v", err, c.is)
			}
			for _, s := range c.mentions {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
			if _, err := os.Stat(out); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("a failed export left %q (%v)", out, err)
			}
		})
	}

	t.Run("no output", func(t *testing.T) {
		if _, err := ExportEncoder(ckpt, "", ExportOptions{}); err == nil {
			t.Error("no error for an empty output path")
		}
	})
	t.Run("output directory missing", func(t *testing.T) {
		out := filepath.Join(tmp, "no", "such", "dir", "enc.safetensors")
		for _, force := range []bool{false, true} {
			if _, err := ExportEncoder(ckpt, out, ExportOptions{Force: force}); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("force %v: error %v, want fs.ErrNotExist", force, err)
			}
		}
	})
	t.Run("non-finite weights", func(t *testing.T) {
		fe, err := LoadEncoder(ckpt)
		if err != nil {
			t.Fatal(err)
		}
		fe.Encoder.Buffers()[0].Value.Data[1] = float32(math.NaN())
		s := checkpoint.State{Step: 9, Config: json.RawMessage(fmt.Sprintf(`{"encoder":{"channels":1,"widths":%s},"size":16,"classes":2}`, mustJSON(t, fe.Encoder.Config.Widths))),
			Pretext: "supervised", Params: fe.Encoder.Params(), Buffers: fe.Encoder.Buffers()}
		nan, err := checkpoint.Save(filepath.Join(tmp, "nan"), s)
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), "enc.safetensors")
		if _, err := ExportEncoder(nan, out, ExportOptions{}); err == nil || !strings.Contains(err.Error(), "NaN") || !strings.Contains(err.Error(), nan) {
			t.Errorf("error %v, want one naming the NaN and the checkpoint", err)
		}
	})
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func bitsEqual(a, b []float32) bool {
	return slices.EqualFunc(a, b, func(x, y float32) bool { return math.Float32bits(x) == math.Float32bits(y) })
}

// entries returns the names in dir.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// rewriteManifest edits the manifest.json of the checkpoint at path.
func rewriteManifest(t *testing.T, path string, edit func(m map[string]any)) {
	t.Helper()
	file := filepath.Join(path, checkpoint.ManifestFile)
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	if b, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
