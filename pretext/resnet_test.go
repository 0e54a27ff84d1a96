package pretext

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/patchwise-ml/patchwise/nn"
)

// tinyResNet is a ResNet-18 at width 1/16 (stage widths 4, 8, 16, 32)
// with the small stem, on 3-channel images.
func tinyResNet() Config {
	return Config{Encoder: EncoderConfig{Channels: 3, Arch: ArchResNet18, Width: 1.0 / 16}, Classes: 3}
}

// TestResNetTrainsEveryPretext trains every registered pretext a few
// steps with a tiny ResNet-18 on 32-pixel images: the loss stays finite
// and falls on the one batch, the encoder's map has the stage width, and the model's
// parameters include the ResNet's.
func TestResNetTrainsEveryPretext(t *testing.T) {
	const side, steps = 32, 4
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			spec, _ := Lookup(name)
			cfg, err := spec.Resolve(tinyResNet(), side, 3)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Size != 32 || !slices.Equal(cfg.Encoder.Widths, []int{4, 8, 16, 32}) {
				t.Fatalf("resolved size %d, widths %v; want 32 and [4 8 16 32]", cfg.Size, cfg.Encoder.Widths)
			}
			rng, _ := nn.NewRNG(1)
			m, err := spec.New(cfg, rng)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(names(m.Params()), "encoder.layer4.1.conv2.weight") {
				t.Fatalf("the model's parameters lack the ResNet's: %v", names(m.Params()))
			}
			b := sampledBatch(name, cfg, 6, side, rand.New(rand.NewPCG(3, 4)))
			params := m.Params()
			opt := nn.NewSGD(params, 0.9, 0, false)
			var losses []float64
			for range steps {
				nn.ZeroGrads(params)
				l := m.Step(b, true).Loss
				if math.IsNaN(l) || math.IsInf(l, 0) {
					t.Fatalf("loss %v after %d steps", l, len(losses))
				}
				losses = append(losses, l)
				opt.Step(0.02)
			}
			t.Logf("losses %.4f", losses)
			if !(losses[steps-1] < losses[0]) {
				t.Errorf("the loss did not fall in %d steps on one batch: %v", steps, losses)
			}
			if l := m.Step(b, false).Loss; math.IsNaN(l) || math.IsInf(l, 0) {
				t.Errorf("evaluation loss %v", l)
			}
			f := m.Encoder().Features(randImages(rand.New(rand.NewPCG(5, 6)), 2, 32, 3))
			if !slices.Equal(f.Shape, []int{2, 32}) {
				t.Errorf("features %v, want [2 32]", f.Shape)
			}
		})
	}
}

// TestResNetStructure checks the maps' shapes and the parameter counts
// against torchvision's resnet18 and resnet34 without their fc layer.
func TestResNetStructure(t *testing.T) {
	if testing.Short() {
		t.Skip("builds full-width ResNets")
	}
	for _, tc := range []struct {
		cfg     EncoderConfig
		side    int
		maps    [][]int // each block's output for one image
		params  int     // trainable parameters
		buffers int     // running statistics, values
	}{
		{EncoderConfig{Arch: ArchResNet18, Stem: StemImageNet}, 64,
			[][]int{{1, 16, 16, 64}, {1, 8, 8, 128}, {1, 4, 4, 256}, {1, 2, 2, 512}}, 11689512 - 513000, 2 * 4800},
		{EncoderConfig{Arch: ArchResNet34, Stem: StemImageNet}, 32,
			[][]int{{1, 8, 8, 64}, {1, 4, 4, 128}, {1, 2, 2, 256}, {1, 1, 1, 512}}, 21797672 - 513000, 2 * 8512},
		{EncoderConfig{Arch: ArchResNet18, Width: 0.25, Channels: 1}, 32,
			[][]int{{1, 32, 32, 16}, {1, 16, 16, 32}, {1, 8, 8, 64}, {1, 4, 4, 128}}, -1, -1},
	} {
		rng, _ := nn.NewRNG(1)
		e := NewEncoder("encoder", tc.cfg, rng)
		x := randImages(rng, 1, tc.side, e.Config.Channels)
		sides := tc.cfg.MapSides(tc.side)
		for k, b := range e.Blocks {
			x = b.Forward(x, false)
			if !slices.Equal(x.Shape, tc.maps[k]) {
				t.Errorf("%s: block %d gives %v, want %v", tc.cfg.Describe(), k+1, x.Shape, tc.maps[k])
			}
			if sides[k] != x.Shape[1] {
				t.Errorf("%s: MapSides says block %d gives side %d, it gives %d", tc.cfg.Describe(), k+1, sides[k], x.Shape[1])
			}
		}
		count := func(ps []*nn.Param) int {
			n := 0
			for _, p := range ps {
				n += p.Value.Len()
			}
			return n
		}
		if tc.params >= 0 {
			if got := count(e.Params()); got != tc.params {
				t.Errorf("%s: %d parameters, torchvision has %d", tc.cfg.Describe(), got, tc.params)
			}
			if got := count(e.Buffers()); got != tc.buffers {
				t.Errorf("%s: %d buffer values, torchvision has %d", tc.cfg.Describe(), got, tc.buffers)
			}
		}
	}
}

func TestEncoderConfigJSON(t *testing.T) {
	// The zero value and the reference encoder's configs say nothing of
	// the ResNets, so their run hashes stay as they were.
	for _, c := range []EncoderConfig{{}, {Channels: 1, Widths: []int{16, 32}}} {
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		for _, key := range []string{"arch", "stem", "width\""} {
			if strings.Contains(string(b), key) {
				t.Errorf("%+v marshals as %s, which names %s", c, b, key)
			}
		}
	}
	spec, _ := Lookup("supervised")
	small, err := spec.Resolve(Config{Encoder: EncoderConfig{Arch: ArchSmall}, Classes: 2}, 28, 1)
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := spec.Resolve(Config{Classes: 2}, 28, 1)
	a, _ := json.Marshal(small)
	b, _ := json.Marshal(plain)
	if string(a) != string(b) {
		t.Errorf("arch %q resolves to\n%s\nthe default to\n%s", ArchSmall, a, b)
	}
	var c EncoderConfig
	if err := json.Unmarshal([]byte(`{"arch": "resnet34", "stem": "imagenet", "width": 0.5}`), &c); err != nil {
		t.Fatal(err)
	}
	if c.Arch != ArchResNet34 || c.Stem != StemImageNet || c.Width != 0.5 || c.withDefaults().Widths[3] != 256 {
		t.Errorf("parsed %+v", c)
	}
}

func TestEncoderConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  EncoderConfig
		want []string // substrings of the error; none: valid
	}{
		{"resnet18", EncoderConfig{Arch: ArchResNet18}, nil},
		{"resnet34 imagenet", EncoderConfig{Arch: ArchResNet34, Stem: StemImageNet, Width: 0.5}, nil},
		{"resnet widths", EncoderConfig{Arch: ArchResNet18, Widths: []int{8, 16, 24, 32}}, nil},
		{"resnet widths agree", EncoderConfig{Arch: ArchResNet18, Width: 0.25, Widths: []int{16, 32, 64, 128}}, nil},
		{"small named", EncoderConfig{Arch: ArchSmall}, nil},
		{"unknown arch", EncoderConfig{Arch: "resnet50"}, []string{`arch "resnet50"`, `"resnet18"`}},
		{"stem without resnet", EncoderConfig{Stem: StemImageNet}, []string{`encoder stem "imagenet": only the ResNets have these: set arch`}},
		{"width without resnet", EncoderConfig{Arch: ArchSmall, Width: 0.5}, []string{"encoder width 0.5: only the ResNets"}},
		{"bad stem", EncoderConfig{Arch: ArchResNet18, Stem: "cifar"}, []string{`stem "cifar"`}},
		{"negative width", EncoderConfig{Arch: ArchResNet18, Width: -1}, []string{"multiplier -1 must be positive"}},
		{"NaN width", EncoderConfig{Arch: ArchResNet18, Width: math.NaN()}, []string{"must be positive"}},
		{"three stages", EncoderConfig{Arch: ArchResNet18, Widths: []int{4, 8, 16}}, []string{"has 4 stages, got 3 widths"}},
		{"widths disagree", EncoderConfig{Arch: ArchResNet18, Width: 0.5, Widths: []int{16, 32, 64, 128}}, []string{"disagree with width multiplier 0.5"}},
		{"all at once", EncoderConfig{Arch: ArchResNet18, Stem: "x", Channels: 2}, []string{"channels must be 1 or 3", `stem "x"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Errorf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate accepted %+v", tc.cfg)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestResNetSizes(t *testing.T) {
	for _, tc := range []struct {
		cfg              EncoderConfig
		strides          []int
		minSize, input28 int
	}{
		{EncoderConfig{}, []int{2, 2, 2, 2}, 16, 32},
		{EncoderConfig{Widths: []int{8, 16}}, []int{2, 2}, 4, 28},
		{EncoderConfig{Arch: ArchResNet18}, []int{1, 2, 2, 2}, 8, 32},
		{EncoderConfig{Arch: ArchResNet34, Stem: StemImageNet}, []int{4, 2, 2, 2}, 32, 32},
	} {
		if got := tc.cfg.Strides(); !slices.Equal(got, tc.strides) {
			t.Errorf("%+v: strides %v, want %v", tc.cfg, got, tc.strides)
		}
		if got := tc.cfg.MinSize(); got != tc.minSize {
			t.Errorf("%+v: MinSize %d, want %d", tc.cfg, got, tc.minSize)
		}
		if got := tc.cfg.InputSize(28); got != tc.input28 {
			t.Errorf("%+v: InputSize(28) %d, want %d", tc.cfg, got, tc.input28)
		}
	}
}

// TestResNetAutoencoders checks that the decoders of the convolutional
// autoencoders give back the input's shape for both stems, that the tied
// decoder's transposes are the encoder's own kernels, and that the
// decoders' upsampling undoes the encoder's strides.
func TestResNetAutoencoders(t *testing.T) {
	for _, stem := range []string{StemSmall, StemImageNet} {
		cfg := EncoderConfig{Channels: 1, Arch: ArchResNet18, Stem: stem, Width: 1.0 / 16}
		rng, _ := nn.NewRNG(1)
		x := randImages(rng, 2, 32, 1)
		mir := NewMirroredAE(cfg, rng)
		if y := mir.Reconstruct(x, true); !slices.Equal(y.Shape, x.Shape) {
			t.Errorf("%s stem: mirrored decoder gives %v for %v", stem, y.Shape, x.Shape)
		}
		tied := NewTiedAE(cfg, rng)
		if y := tied.Reconstruct(x, true); !slices.Equal(y.Shape, x.Shape) {
			t.Errorf("%s stem: tied decoder gives %v for %v", stem, y.Shape, x.Shape)
		}
		convs := tied.Encoder().DownConvs()
		wantNames := []string{"encoder.conv1.weight", "encoder.layer1.0.conv1.weight", "encoder.layer2.0.conv1.weight",
			"encoder.layer3.0.conv1.weight", "encoder.layer4.0.conv1.weight"}
		var got []string
		for _, c := range convs {
			got = append(got, c.Weight.Name)
		}
		if !slices.Equal(got, wantNames) {
			t.Errorf("%s stem: down-convolutions %v, want %v", stem, got, wantNames)
		}
		shared := 0
		for _, l := range tied.Decoder.Layers {
			var w *nn.Param
			switch d := l.(type) {
			case *nn.ConvTranspose2D:
				w = d.Weight
			case *nn.UpsampleConv2D:
				w = d.Weight
			}
			for _, c := range convs {
				if w != nil && w == c.Weight {
					shared++
				}
			}
		}
		if shared != len(convs) {
			t.Errorf("%s stem: %d of the decoder's transposes share an encoder kernel, want %d", stem, shared, len(convs))
		}
		// Parameters listed once, the shared kernels under the encoder's names.
		if ps := tied.Params(); len(nn.Unique(ps)) != len(ps) {
			t.Errorf("%s stem: a parameter is listed twice", stem)
		}
	}
}
