package pipeline

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/patchwise-ml/patchwise/nn"
	"github.com/patchwise-ml/patchwise/nn/safetensors"
	"github.com/patchwise-ml/patchwise/pretext"
)

// torchvisionPython returns the Python that has PyTorch and torchvision,
// skipping the test when there is none, unless PATCHWISE_REQUIRE_TORCH=1
// (then it fails).
func torchvisionPython(t *testing.T) string {
	t.Helper()
	py := torchPython(t)
	if out, err := exec.Command(py, "-c", "import torchvision").CombinedOutput(); err != nil {
		msg := fmt.Sprintf("%s cannot import torchvision (apt-get install python3-torchvision): %v\n%s", py, err, out)
		if os.Getenv("PATCHWISE_REQUIRE_TORCH") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return py
}

// exportResNet pretrains a few steps of the supervised pretext with the
// ResNet enc (on 16×16 RGB images when rgb, else the grey tiny dataset)
// and exports it; it returns the export's path, info and encoder.
func exportResNet(t *testing.T, enc pretext.EncoderConfig, rgb bool) (string, *ExportInfo, *FrozenEncoder) {
	t.Helper()
	run := exportTrained(t, "supervised", func(cfg *PretrainConfig) {
		cfg.Encoder, cfg.Steps, cfg.Batch = enc, 2, 8
		if rgb {
			cfg.Dataset = writeColorDataset(t, 32, 8, 16)
		}
	})
	out := filepath.Join(t.TempDir(), "resnet.safetensors")
	info, err := ExportEncoder(run, out, ExportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fe, err := LoadEncoder(run)
	if err != nil {
		t.Fatal(err)
	}
	return out, info, fe
}

// TestExportResNetKeys checks a ResNet export against its encoder without
// PyTorch: every parameter and buffer under its torchvision key (its
// Patchwise name less "encoder."), kernels transposed to OIHW, the rest
// bit for bit, a num_batches_tracked per batch norm, and the metadata.
func TestExportResNetKeys(t *testing.T) {
	enc := pretext.EncoderConfig{Arch: pretext.ArchResNet34, Width: 1.0 / 16}
	out, info, fe := exportResNet(t, enc, false)
	ts, meta, err := safetensors.Read(out)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	e := fe.Encoder
	for _, p := range slices.Concat(e.Params(), e.Buffers()) {
		key := strings.TrimPrefix(p.Name, "encoder.")
		want[key] = true
		sh := p.Value.Shape
		if len(sh) == 4 {
			o, k, in := sh[0], sh[1], sh[3]
			got := f32s(t, ts, key, o, in, k, k)
			for i := range p.Value.Data { // [o, ky, kx, c] → [o, c, ky, kx]
				oo, r := i/(k*k*in), i%(k*k*in)
				ky, kx, c := r/(k*in), r/in%k, r%in
				if v := got[((oo*in+c)*k+ky)*k+kx]; v != p.Value.Data[i] {
					t.Fatalf("%s[%d, %d, %d, %d] = %v, want %v", key, oo, c, ky, kx, v, p.Value.Data[i])
				}
			}
			continue
		}
		if got := f32s(t, ts, key, sh...); !bitsEqual(got, p.Value.Data) {
			t.Errorf("%s differs from %s", key, p.Name)
		}
		if bn, ok := strings.CutSuffix(key, ".running_mean"); ok {
			want[bn+".num_batches_tracked"] = true
			nb := ts[bn+".num_batches_tracked"]
			if v, err := nb.Int64s(); err != nil || len(nb.Shape) != 0 || len(v) != 1 || v[0] != int64(fe.Step) {
				t.Errorf("%s.num_batches_tracked: shape %v values %v (%v), want the scalar %d", bn, nb.Shape, v, err, fe.Step)
			}
		}
	}
	if len(ts) != len(want) || info.Tensors != len(want) {
		t.Errorf("%d tensors in the file, info says %d, want %d", len(ts), info.Tensors, len(want))
	}
	for _, k := range []string{"conv1.weight", "bn1.num_batches_tracked", "layer1.2.conv2.weight",
		"layer3.0.downsample.0.weight", "layer4.2.bn2.running_var"} {
		if !want[k] {
			t.Errorf("no tensor %q among %d", k, len(want))
		}
	}
	for k, v := range map[string]string{"patchwise_format_version": "2", "arch": "resnet34", "stem": "small",
		"widths": "[4,8,16,32]", "feature_dim": "32", "channels": "1"} {
		if meta[k] != v {
			t.Errorf("metadata %q = %q, want %q", k, meta[k], v)
		}
	}
	if !strings.Contains(meta["architecture"], "torchvision resnet34") {
		t.Errorf("architecture %q", meta["architecture"])
	}
}

// TestExportResNetTorchvision exports ResNets and loads them into
// torchvision's own model (examples/load_torchvision.py): strict=False
// misses only fc.weight and fc.bias and finds nothing unexpected, and the
// features (the global average of layer4's output, in evaluation mode)
// agree with Patchwise's within 1e-4 of the largest. The width-1 ResNet-18
// with the ImageNet stem loads into torchvision.models.resnet18() itself.
// examples/load_encoder.py, which needs no torchvision, gives the same
// (checked on the second, to save a Python start).
func TestExportResNetTorchvision(t *testing.T) {
	py := torchvisionPython(t)
	for _, c := range []struct {
		name    string
		enc     pretext.EncoderConfig
		rgb     bool
		library bool // loads into torchvision.models.<arch>() itself
	}{
		{"resnet18-imagenet-width1", pretext.EncoderConfig{Arch: pretext.ArchResNet18, Stem: pretext.StemImageNet}, true, true},
		{"resnet34-small-width1/8-grey", pretext.EncoderConfig{Arch: pretext.ArchResNet34, Width: 0.125}, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if testing.Short() && c.library {
				t.Skip("trains a full-width ResNet-18")
			}
			out, info, fe := exportResNet(t, c.enc, c.rgb)
			rng := rand.New(rand.NewPCG(7, 8))
			const n = 5
			s, ch, dim := info.Size, info.Channels, fe.Encoder.Dim()
			x := nn.NewTensor(n, s, s, ch)
			for i := range x.Data {
				x.Data[i] = rng.Float32()
			}
			want := slices.Clone(fe.Encoder.Features(x).Data)

			raw, feats := writeRaw(t, x), filepath.Join(t.TempDir(), "f.f32")
			msg, err := exec.Command(py, filepath.Join("..", "examples", "load_torchvision.py"), out,
				"--raw-in", raw, "--raw-out", feats, "--threads", "1").CombinedOutput()
			if err != nil {
				t.Fatalf("load_torchvision.py: %v\n%s", err, msg)
			}
			var load struct {
				Missing, Unexpected []string
				Model               string `json:"torchvision_model"`
				Library             bool   `json:"library_model"`
			}
			line, _, _ := strings.Cut(string(msg), "\n")
			if err := json.Unmarshal([]byte(line), &load); err != nil {
				t.Fatalf("load_torchvision.py printed %q: %v", msg, err)
			}
			t.Logf("load_state_dict(strict=False): %s", line)
			if !slices.Equal(load.Missing, []string{"fc.bias", "fc.weight"}) || len(load.Unexpected) != 0 {
				t.Errorf("missing %v, unexpected %v; want only fc.bias and fc.weight missing", load.Missing, load.Unexpected)
			}
			if load.Library != c.library {
				t.Errorf("torchvision's own %s model: %v, want %v", c.enc.Arch, load.Library, c.library)
			}
			got := readRawFloats(t, feats, n*dim)
			compareRelative(t, "torchvision", got, want)
			if !c.library {
				compareRelative(t, "load_encoder.py", torchFeatures(t, py, out, n, dim, "--raw-in", raw), want)
			}
		})
	}
}

// readRawFloats reads n little-endian float32 values from path.
func readRawFloats(t *testing.T, path string, n int) []float32 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 4*n {
		t.Fatalf("%s: %d bytes, want %d floats", path, len(b), n)
	}
	f := make([]float32, n)
	for i := range f {
		f[i] = math.Float32frombits(uint32(b[4*i]) | uint32(b[4*i+1])<<8 | uint32(b[4*i+2])<<16 | uint32(b[4*i+3])<<24)
	}
	return f
}

// compareRelative fails t unless got and want agree within 1e-4 of the
// largest |want|.
func compareRelative(t *testing.T, what string, got, want []float32) {
	t.Helper()
	var maxAbs, maxRef float64
	for i := range want {
		maxAbs = max(maxAbs, math.Abs(float64(got[i])-float64(want[i])))
		maxRef = max(maxRef, math.Abs(float64(want[i])))
	}
	t.Logf("%s: max |torch − patchwise| = %.3g, max |feature| %.3g", what, maxAbs, maxRef)
	if maxRef == 0 {
		t.Fatalf("%s: all features are zero: the comparison proves nothing", what)
	}
	if !(maxAbs <= 1e-4*maxRef) {
		t.Errorf("%s: features differ by up to %.3g, more than 1e-4 of the largest (%.3g)", what, maxAbs, maxRef)
	}
}
