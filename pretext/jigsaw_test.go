package pretext

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/patchwise-ml/patchwise/augment"
	"github.com/patchwise-ml/patchwise/nn"
)

// TestJigsawResolve checks the jigsaw's defaults for 28×28 grey images and
// the reference encoder, and that the resolved config, permutations
// included, survives JSON and resolves to itself.
func TestJigsawResolve(t *testing.T) {
	spec, err := Lookup("jigsaw")
	if err != nil {
		t.Fatal(err)
	}
	c, err := spec.Resolve(Config{}, 28, 1)
	if err != nil {
		t.Fatal(err)
	}
	j := c.Jigsaw
	want, _ := augment.MaxHammingPermutations(DefaultJigsawPermutations, 0)
	if c.Size != 32 || j.Size != 16 || j.Hidden != DefaultJigsawHidden || j.Permutations != 100 || !slices.Equal(j.Set, want) ||
		j.Transform == nil || *j.Transform != augment.ModernDefaults() {
		t.Errorf("resolved %+v, jigsaw %+v", c, j)
	}
	if got := spec.Metrics[0].Chance(c); got != 0.01 {
		t.Errorf("chance %v, want 1/100", got)
	}
	if spec.InputNorm(c) != augment.NormStandardize {
		t.Errorf("input normalisation %q", spec.InputNorm(c))
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"set":["`+want[0].String()+`","`+want[1].String()+`",`) {
		t.Errorf("the set is not in the config's JSON: %.300s…", b)
	}
	var back Config
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	again, err := spec.Resolve(back, 28, 1)
	if err != nil {
		t.Fatal(err)
	}
	if b2, _ := json.Marshal(again); string(b2) != string(b) {
		t.Errorf("resolved again:\n%s\nfirst:\n%s", b2, b)
	}

	// Other pretexts' JSON has no jigsaw field.
	rp, _ := Lookup("relpos")
	rc, _ := rp.Resolve(Config{}, 28, 1)
	if b, _ := json.Marshal(rc); strings.Contains(string(b), "jigsaw") {
		t.Errorf("relpos config mentions the jigsaw: %s", b)
	}

	// A given set is used as it is, and sets P; a seed changes the set;
	// a 64-px image's 16-px tiles stay at 16 for four blocks.
	set := []augment.Permutation{{0, 1, 2, 3, 4, 5, 6, 7, 8}, {8, 7, 6, 5, 4, 3, 2, 1, 0}, {1, 0, 2, 3, 4, 5, 6, 7, 8}}
	c, err = spec.Resolve(Config{Jigsaw: JigsawConfig{Set: set}}, 28, 1)
	if err != nil || c.Jigsaw.Permutations != 3 || !slices.Equal(c.Jigsaw.Set, set) {
		t.Errorf("given set: %+v, %v", c.Jigsaw, err)
	}
	c, err = spec.Resolve(Config{Jigsaw: JigsawConfig{Permutations: 30, Seed: 4}}, 64, 3)
	if s, _ := augment.MaxHammingPermutations(30, 4); err != nil || !slices.Equal(c.Jigsaw.Set, s) || c.Jigsaw.Size != 16 {
		t.Errorf("seed 4: %+v, %v", c.Jigsaw, err)
	}
	c, err = spec.Resolve(Config{Jigsaw: JigsawConfig{Tiles: augment.TileConfig{Tile: 18, Gap: 2, Jitter: 1}}}, 64, 3)
	if err != nil || c.Jigsaw.Size != 18 {
		t.Errorf("18-px tiles: input size %d, want 18 (native); %v", c.Jigsaw.Size, err)
	}
	// 96-px images: 24-px tiles go in at 24, not enlarged to 32.
	c, err = spec.Resolve(Config{}, 96, 3)
	if err != nil || c.Jigsaw.Size != 24 || c.Size != 96 {
		t.Errorf("96-px images: tile input size %d (want 24), image size %d (want 96); %v", c.Jigsaw.Size, c.Size, err)
	}
}

func TestJigsawResolveErrors(t *testing.T) {
	spec, _ := Lookup("jigsaw")
	with := func(f func(*JigsawConfig)) Config {
		c := tinyConfig()
		f(&c.Jigsaw)
		return c
	}
	id := augment.Permutation{0, 1, 2, 3, 4, 5, 6, 7, 8}
	for _, tc := range []struct {
		desc string
		cfg  Config
		want []string
		geom bool
	}{
		{"too many to generate", with(func(j *JigsawConfig) { j.Permutations = augment.MaxGenerated + 1 }), []string{"2001 permutations: want 2 to 2000"}, false},
		{"negative", with(func(j *JigsawConfig) { j.Permutations = -3 }), []string{"-3 permutations"}, false},
		{"one", with(func(j *JigsawConfig) { j.Permutations = 1 }), []string{"1 permutations: want at least 2"}, false},
		{"set and count disagree", with(func(j *JigsawConfig) {
			j.Permutations = 4
			j.Set = []augment.Permutation{id, {1, 0, 2, 3, 4, 5, 6, 7, 8}}
		}),
			[]string{"permutations 4, but the set holds 2"}, false},
		{"repeated", with(func(j *JigsawConfig) { j.Set = []augment.Permutation{id, id} }), []string{"permutation 1 012345678 repeats permutation 0"}, false},
		{"tiles too big", with(func(j *JigsawConfig) { j.Tiles.Tile = 6 }), []string{"largest tile that fits with this gap and jitter is 4 px"}, true},
		{"input too small", with(func(j *JigsawConfig) { j.Size = 2 }), []string{"tile input size 2 is too small for an encoder of 2 blocks: need at least 4"}, false},
		{"every problem at once", with(func(j *JigsawConfig) { j.Hidden, j.Size, j.Permutations = -1, -2, 5000 }),
			[]string{"hidden width -1", "tile input size -2 is negative", "5000 permutations"}, false},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			_, err := spec.Resolve(tc.cfg, tinySide, 1)
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if n := strings.Count(err.Error(), "\n") + 1; n != len(tc.want) {
				t.Errorf("%d problems reported, want %d: %v", n, len(tc.want), err)
			}
			var ge *augment.TileGeometryError
			if errors.As(err, &ge) != tc.geom {
				t.Errorf("errors.As(*TileGeometryError) = %v", !tc.geom)
			}
		})
	}
}

// TestJigsawPuzzlesApart checks that each puzzle's logits come from its own
// 9 rows, in slot order: in evaluation mode, swapping two puzzles swaps
// their logits exactly, and swapping two tiles within a puzzle changes its
// logits only.
func TestJigsawPuzzlesApart(t *testing.T) {
	rng, _ := nn.NewRNG(3)
	m := NewJigsaw(EncoderConfig{Channels: 1, Widths: []int{4, 8}}, 16, 5, rng)
	x := randImages(rand.New(rand.NewPCG(1, 1)), 3*augment.Tiles, 8, 1)
	per := x.Len() / x.Shape[0]
	rows := func(t *nn.Tensor, i int) []float32 { return t.Data[i*per : (i+1)*per] }
	logits := func(x *nn.Tensor) [][]float32 {
		l := m.Logits(x, false)
		var out [][]float32
		for i := range 3 {
			out = append(out, slices.Clone(l.Data[i*5:(i+1)*5]))
		}
		return out
	}
	ref := logits(x)

	swapped := x.Clone()
	for k := range augment.Tiles {
		copy(rows(swapped, k), rows(x, augment.Tiles+k))
		copy(rows(swapped, augment.Tiles+k), rows(x, k))
	}
	got := logits(swapped)
	if !slices.Equal(got[0], ref[1]) || !slices.Equal(got[1], ref[0]) || !slices.Equal(got[2], ref[2]) {
		t.Errorf("swapping puzzles 0 and 1: logits\n%v\nwere\n%v", got, ref)
	}

	shuffled := x.Clone()
	copy(rows(shuffled, 2*augment.Tiles), rows(x, 2*augment.Tiles+5))
	copy(rows(shuffled, 2*augment.Tiles+5), rows(x, 2*augment.Tiles))
	got = logits(shuffled)
	if !slices.Equal(got[0], ref[0]) || !slices.Equal(got[1], ref[1]) || slices.Equal(got[2], ref[2]) {
		t.Errorf("swapping tiles 0 and 5 of puzzle 2: logits\n%v\nwere\n%v", got, ref)
	}

	defer func() {
		if recover() == nil {
			t.Error("Logits of 10 tiles did not panic")
		}
	}()
	m.Logits(randImages(rand.New(rand.NewPCG(1, 1)), 10, 8, 1), false)
}
