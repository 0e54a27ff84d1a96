package augment

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/patchwise-ml/patchwise/data"
)

func TestTileGeometry(t *testing.T) {
	for _, tc := range []struct {
		desc string
		cfg  TileConfig
		side int
		want TileGeometry // Side filled in by the test
	}{
		{"defaults at 28", TileConfig{}, 28, TileGeometry{Tile: 7, Gap: 2, Jitter: 1}},
		{"defaults at 32", TileConfig{}, 32, TileGeometry{Tile: 8, Gap: 2, Jitter: 1}},
		{"defaults at 64", TileConfig{}, 64, TileGeometry{Tile: 16, Gap: 4, Jitter: 2}},
		{"defaults at 96", TileConfig{}, 96, TileGeometry{Tile: 24, Gap: 7, Jitter: 3}},
		{"defaults at 256", TileConfig{}, 256, TileGeometry{Tile: 64, Gap: 18, Jitter: 9}},
		// 0.07·16 = 1.12 → 1 px of gap: the default jitter (0.56 → 1)
		// is cut to half the gap.
		{"defaults at 16", TileConfig{}, 16, TileGeometry{Tile: 4, Gap: 1, Jitter: 0}},
		// 0.25·12 = 3, but 3 tiles of 3, gap 1 (0.84) and no jitter
		// would need 11: fits.
		{"defaults at 12", TileConfig{}, 12, TileGeometry{Tile: 3, Gap: 1, Jitter: 0}},
		{"pixels", TileConfig{Tile: 5, Gap: 4, Jitter: 2}, 28, TileGeometry{Tile: 5, Gap: 4, Jitter: 2}},
		{"no gap, no jitter", TileConfig{Tile: 9, Gap: None, Jitter: None}, 28, TileGeometry{Tile: 9}},
		{"fractions", TileConfig{Tile: 0.3, Gap: 0.05, Jitter: None}, 40, TileGeometry{Tile: 12, Gap: 2}},
		{"exact fit", TileConfig{Tile: 8, Gap: 2, Jitter: 1}, 30, TileGeometry{Tile: 8, Gap: 2, Jitter: 1}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			g, err := tc.cfg.Geometry(tc.side)
			if err != nil {
				t.Fatal(err)
			}
			tc.want.Side = tc.side
			if g != tc.want {
				t.Errorf("got %+v, want %+v", g, tc.want)
			}
			if g.Span() > tc.side || g.Gap < 2*g.Jitter {
				t.Errorf("%+v does not fit or lets tiles overlap", g)
			}
		})
	}
}

func TestTileGeometryErrors(t *testing.T) {
	for _, tc := range []struct {
		desc string
		cfg  TileConfig
		side int
		want []string // substrings, one per problem
		geom bool     // a *TileGeometryError is among them
	}{
		{"too big", TileConfig{Tile: 10}, 28, []string{"3×3 tiles of 10 px with gap 2 and jitter 1 need 36 px, image is 28: largest tile that fits with this gap and jitter is 7 px"}, true},
		{"too big, gap named", TileConfig{Tile: 8, Gap: 4, Jitter: None}, 28, []string{"largest tile that fits with this gap and jitter is 6 px; largest gap with this tile and jitter is 2 px"}, true},
		{"too big, no gap would do", TileConfig{Tile: 8, Gap: 4, Jitter: 1}, 28, []string{"largest tile that fits with this gap and jitter is 6 px"}, true},
		{"overlap", TileConfig{Tile: 6, Gap: 2, Jitter: 2}, 28, []string{"gap 2 px is less than twice the jitter 2 px", "largest jitter with this gap is 1 px, least gap with this jitter 4 px"}, true},
		{"no room at all", TileConfig{Gap: 10, Jitter: 5}, 28, []string{"leave no room for tiles"}, true},
		{"tile rounds to 0", TileConfig{Tile: 0.01}, 28, []string{"tile of 0.01 rounds to 0 px"}, true},
		{"bad lengths", TileConfig{Tile: None, Gap: -3, Jitter: -2}, 28, []string{"gap -3", "jitter -2", "tile none"}, false},
		{"bad side", TileConfig{}, 0, []string{"image side 0"}, false},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			_, err := tc.cfg.Geometry(tc.side)
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			var ge *TileGeometryError
			if errors.As(err, &ge) != tc.geom {
				t.Errorf("errors.As(%v, *TileGeometryError) = %v", err, !tc.geom)
			}
		})
	}
}

// TestTileGeometrySample checks the tiles' places: inside the image, in
// their cells, never overlapping, jittered over the whole range, the
// grid's origin over every place it fits.
func TestTileGeometrySample(t *testing.T) {
	g, err := TileConfig{Tile: 5, Gap: 4, Jitter: 2}.Geometry(31) // span 27: origins 0–4
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	places := map[[2]int]bool{}
	offsets := map[int]bool{}
	for range 2000 {
		cells := g.Sample(rng)
		ox, oy := cells[0].X, cells[0].Y // the first tile's, jittered
		for i, a := range cells {
			if a.Size != 5 || a.X < 0 || a.Y < 0 || a.X+a.Size > 31 || a.Y+a.Size > 31 {
				t.Fatalf("tile %d %+v leaves the image", i, a)
			}
			for _, b := range cells[:i] {
				if a.X < b.X+b.Size && b.X < a.X+a.Size && a.Y < b.Y+b.Size && b.Y < a.Y+a.Size {
					t.Fatalf("tiles %+v and %+v overlap", a, b)
				}
			}
			if i > 0 {
				// Offset from tile 0: the cells' distance ± 2·jitter.
				dx, dy := a.X-ox-i%3*9, a.Y-oy-i/3*9
				if dx < -4 || dx > 4 || dy < -4 || dy > 4 {
					t.Fatalf("tile %d at %+v, tile 0 at (%d, %d)", i, a, ox, oy)
				}
			}
		}
		// The centre tile lies at the grid's origin (jitter to jitter +
		// 4) plus its cell's offset 9 plus its own jitter (±2).
		mid := cells[4]
		places[[2]int{mid.X - 9, mid.Y - 9}] = true
		offsets[mid.X-cells[3].X] = true
	}
	// Neighbours' distances 9 ± 4 all occur.
	for d := 5; d <= 13; d++ {
		if !offsets[d] {
			t.Errorf("no horizontal neighbour offset of %d px in 2000 draws", d)
		}
	}
	// The centre tile's corner less its cell's offset: every place from
	// 0 to 8 on each axis.
	for x := range 9 {
		for y := range 9 {
			if !places[[2]int{x, y}] {
				t.Errorf("the centre tile never lies at (%d, %d) off its cell", x, y)
			}
		}
	}
}

func TestPermutationText(t *testing.T) {
	p := Permutation{8, 0, 7, 1, 6, 2, 5, 3, 4}
	b, err := json.Marshal([]Permutation{p, {0, 1, 2, 3, 4, 5, 6, 7, 8}})
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `["807162534","012345678"]` {
		t.Errorf("JSON %s", b)
	}
	var back []Permutation
	if err := json.Unmarshal(b, &back); err != nil || len(back) != 2 || back[0] != p {
		t.Errorf("round trip: %v, %v", back, err)
	}
	for _, bad := range []string{`"01234567"`, `"0123456789"`, `"012345677"`, `"01234567x"`, `"012345679"`, `12`} {
		var q Permutation
		if err := json.Unmarshal([]byte(bad), &q); err == nil {
			t.Errorf("%s: accepted as %v", bad, q)
		}
	}
	if _, err := json.Marshal(Permutation{1, 1, 2, 3, 4, 5, 6, 7, 8}); err == nil {
		t.Error("an invalid permutation marshalled")
	}
	if Hamming(p, p) != 0 || Hamming(p, Permutation{0, 1, 2, 3, 4, 5, 6, 7, 8}) != 9 ||
		Hamming(Permutation{1, 0, 2, 3, 4, 5, 6, 7, 8}, Permutation{0, 1, 2, 3, 4, 5, 6, 7, 8}) != 2 {
		t.Error("Hamming distances")
	}
}

// bruteHamming counts differing slots the plain way.
func bruteHamming(a, b Permutation) int {
	n := 0
	for i := range a {
		if a[i] != b[i] {
			n++
		}
	}
	return n
}

func TestMaxHammingPermutations(t *testing.T) {
	set, err := MaxHammingPermutations(100, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(set) != 100 {
		t.Fatalf("%d permutations", len(set))
	}
	if err := CheckPermutations(set); err != nil {
		t.Fatal(err)
	}
	least, sum, pairs := 9, 0, 0
	for i := range set {
		for j := range i {
			d := bruteHamming(set[i], set[j])
			if d != Hamming(set[i], set[j]) {
				t.Fatalf("Hamming(%s, %s) = %d, want %d", set[i], set[j], Hamming(set[i], set[j]), d)
			}
			least = min(least, d)
			sum += d
			pairs++
		}
	}
	mean := float64(sum) / float64(pairs)
	t.Logf("100 permutations, seed 0: least distance %d, mean %.3f", least, mean)
	// As MaxHammingPermutations's documentation states.
	if least != 6 || MinHamming(set) != 6 || mean < 8.075 || mean > 8.085 {
		t.Errorf("least distance %d (MinHamming %d), mean %.3f: want 6 and 8.08", least, MinHamming(set), mean)
	}
	// A random set of 100 has pairs at distance 2 or 3: the greedy set
	// is far better.
	rng := rand.New(rand.NewPCG(3, 4))
	random := make([]Permutation, 100)
	for i := range random {
		for k, v := range rng.Perm(9) {
			random[i][k] = uint8(v)
		}
	}
	if MinHamming(random) >= least {
		t.Errorf("a random set's least distance %d is no worse than the greedy set's", MinHamming(random))
	}

	// Deterministic, and the cache hands out copies.
	set[0][0], set[0][1] = set[0][1], set[0][0]
	again, _ := MaxHammingPermutations(100, 0)
	if again[0] == set[0] || !slices.Equal(again[1:], set[1:]) {
		t.Error("a second call gave another set, or the cache's own")
	}
	if fresh := maxHamming(100, 0); !slices.Equal(fresh, again) {
		t.Error("the greedy search is not deterministic")
	}
	// Another seed: another set. A smaller set is farther apart.
	other, _ := MaxHammingPermutations(100, 1)
	if slices.Equal(other, again) {
		t.Error("seeds 0 and 1 gave the same set")
	}
	if small, _ := MaxHammingPermutations(10, 0); MinHamming(small) != 8 {
		t.Errorf("10 permutations: least distance %d, want 8", MinHamming(small))
	}
	for _, n := range []int{0, -1, MaxGenerated + 1} {
		if _, err := MaxHammingPermutations(n, 0); err == nil {
			t.Errorf("%d permutations: no error", n)
		}
	}
}

func TestCheckPermutations(t *testing.T) {
	id := Permutation{0, 1, 2, 3, 4, 5, 6, 7, 8}
	sw := Permutation{1, 0, 2, 3, 4, 5, 6, 7, 8}
	if err := CheckPermutations([]Permutation{id, sw}); err != nil {
		t.Error(err)
	}
	err := CheckPermutations([]Permutation{id, sw, id, {9, 1, 2, 3, 4, 5, 6, 7, 8}})
	for _, w := range []string{"permutation 2 012345678 repeats permutation 0", "permutation 3 [9 1 2 3 4 5 6 7 8]"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v lacks %q", err, w)
		}
	}
	if err := CheckPermutations([]Permutation{id}); err == nil || !strings.Contains(err.Error(), "at least 2") {
		t.Errorf("one permutation: %v", err)
	}
}

// openJigsawLoader returns a shuffled Loader of the puzzles of split of
// ds, and its sampler.
func openJigsawLoader(ds *data.Dataset, cfg TileConfig, perms []Permutation, tr Transform, size, batch, workers int, seed uint64) (*Loader, *JigsawSampler, error) {
	m := ds.Manifest()
	s, err := NewJigsawSampler(cfg, perms, tr, m.Size, m.Channels, size)
	if err != nil {
		return nil, nil, err
	}
	l, err := NewLoader(ds, data.Train, s, LoaderConfig{Batch: batch, Workers: workers, Seed: seed, Shuffle: true})
	return l, s, err
}

func TestJigsawSamplerDeterministic(t *testing.T) {
	ds := testDataset(t, 23, 28, 3)
	perms, _ := MaxHammingPermutations(30, 0)
	var ref []imageCopy
	for _, workers := range []int{1, 2, 5} {
		l, s, err := openJigsawLoader(ds, TileConfig{}, perms, ModernDefaults(), 16, 4, workers, 7)
		if err != nil {
			t.Fatal(err)
		}
		if v := s.Views(); len(v) != 1 || v[0].Count != Tiles || v[0].Side != 16 || s.Labels() != 1 || s.Permutations() != 30 {
			t.Fatalf("views %+v, %d labels, %d permutations", v, s.Labels(), s.Permutations())
		}
		got := collectImages(t, l, 0, 0, 12) // more than two epochs
		if ref == nil {
			ref = got
			continue
		}
		for i := range got {
			if !got[i].equal(ref[i]) {
				t.Fatalf("%d workers: batch %d differs from 1 worker's", workers, i)
			}
		}
	}
	labels := map[int]bool{}
	for _, b := range ref {
		for _, l := range b.labels {
			if l < 0 || l >= 30 {
				t.Fatalf("label %d", l)
			}
			labels[l] = true
		}
	}
	if len(labels) < 15 {
		t.Errorf("48 puzzles used only %d of 30 permutations", len(labels))
	}
	// A resumed stream gives the same batches.
	l, _, _ := openJigsawLoader(ds, TileConfig{}, perms, ModernDefaults(), 16, 4, 2, 7)
	for i, b := range collectImages(t, l, 1, 2, 3) {
		if !b.equal(ref[5+2+i]) {
			t.Errorf("resumed batch %d differs", i)
		}
	}
}

// TestJigsawSamplerContent checks puzzles against the tiles drawn
// directly, and that each slot holds the cell its permutation names, read
// from images whose pixels encode their own place.
func TestJigsawSamplerContent(t *testing.T) {
	const side = 28
	perms, _ := MaxHammingPermutations(12, 3)
	// Red is 9·x, green 9·y: a pixel tells where it lies.
	pix := make([]uint8, side*side*3)
	for y := range side {
		for x := range side {
			pix[(y*side+x)*3], pix[(y*side+x)*3+1], pix[(y*side+x)*3+2] = uint8(9*x), uint8(9*y), 100
		}
	}
	img := Image{Pix: pix, Side: side, C: 3, Label: -1}
	s, err := NewJigsawSampler(TileConfig{}, perms, Transform{}, side, 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	g := s.Geometry()
	if v := s.Views()[0]; v.Side != g.Tile {
		t.Fatalf("size 0: tiles of %d px, want the tile's %d", v.Side, g.Tile)
	}
	d := s.NewDrawer()
	per := g.Tile * g.Tile * 3
	smp := Sample{Views: [][]float32{make([]float32, Tiles*per)}, Labels: []int{0}}
	step := g.Tile + g.Gap
	for i := range 200 {
		if err := d.Draw(img, rand.New(rand.NewPCG(uint64(i), 9)), smp); err != nil {
			t.Fatal(err)
		}
		label := smp.Labels[0]
		if label < 0 || label >= len(perms) {
			t.Fatalf("label %d", label)
		}
		// Slot 0's cell gives the grid's place, up to the jitter.
		c0 := int(perms[label][0])
		x0 := int(smp.Views[0][0]*255/9+0.5) - c0%3*step
		y0 := int(smp.Views[0][1]*255/9+0.5) - c0/3*step
		for slot, cell := range perms[label] {
			tile := smp.Views[0][slot*per : (slot+1)*per]
			x, y := int(tile[0]*255/9+0.5), int(tile[1]*255/9+0.5)
			dx, dy := x-x0-int(cell)%3*step, y-y0-int(cell)/3*step
			if dx < -2*g.Jitter || dx > 2*g.Jitter || dy < -2*g.Jitter || dy > 2*g.Jitter {
				t.Fatalf("puzzle %d (permutation %d = %s): slot %d starts at (%d, %d), not in cell %d", i, label, perms[label], slot, x, y, cell)
			}
			// A whole tile, unscaled: its last pixel is Tile−1 further.
			last := tile[per-3:]
			if int(last[0]*255/9+0.5) != x+g.Tile-1 || int(last[1]*255/9+0.5) != y+g.Tile-1 {
				t.Fatalf("puzzle %d slot %d: not a %d-px tile", i, slot, g.Tile)
			}
		}
	}

	// Through a loader, resized and transformed: the same as drawing
	// each step directly from the sample's generator.
	ds := testDataset(t, 10, side, 3)
	recs, _ := ds.Load(data.Train)
	tr := DoerschDefaults()
	tr.Pixelate = 0.5
	l, s, err := openJigsawLoader(ds, TileConfig{}, perms, tr, 16, 4, 2, 5)
	if err != nil {
		t.Fatal(err)
	}
	g = s.Geometry()
	got := collectImages(t, l, 0, 0, 1)[0]
	order := epochOrder(t, l, 0)
	per = 16 * 16 * 3
	tile, out := NewPatch(g.Tile, g.Tile, 3), NewPatch(16, 16, 3)
	for j := range 4 {
		rng := NewRand(5, 0, j)
		label := rng.IntN(len(perms))
		cells := g.Sample(rng)
		if got.labels[j] != label || got.imgs[j] != order[j] {
			t.Fatalf("sample %d: label %d image %d, want %d %d", j, got.labels[j], got.imgs[j], label, order[j])
		}
		for slot, cell := range perms[label] {
			CropPatch(tile, recs[order[j]].Pixels, side, side, 3, cells[cell])
			Resize(out, tile)
			tr.Apply(out, rng)
			if !slices.Equal(got.x[(j*Tiles+slot)*per:(j*Tiles+slot+1)*per], out.Pix) {
				t.Fatalf("sample %d slot %d differs from the direct draw", j, slot)
			}
		}
	}
}

func TestJigsawSamplerErrors(t *testing.T) {
	id := Permutation{0, 1, 2, 3, 4, 5, 6, 7, 8}
	_, err := NewJigsawSampler(TileConfig{Tile: 10}, []Permutation{id, id}, Transform{Color: "x"}, 28, 1, -1)
	var ge *TileGeometryError
	if err == nil || !errors.As(err, &ge) {
		t.Fatalf("want a *TileGeometryError, got %v", err)
	}
	for _, w := range []string{"largest tile that fits", "repeats permutation 0", `color "x"`, "size -1"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q: %v", w, err)
		}
	}
	if n := strings.Count(err.Error(), "\n") + 1; n != 4 {
		t.Errorf("%d problems reported, want 4: %v", n, err)
	}
	ds := testDataset(t, 3, 28, 1)
	perms, _ := MaxHammingPermutations(5, 0)
	if _, _, err := openJigsawLoader(ds, TileConfig{}, perms, Transform{}, 16, 4, 1, 0); err == nil {
		t.Error("3 images made a batch of 4")
	}
}

// BenchmarkJigsaw measures puzzle drawing on one worker: 9 tiles of 7 px
// from 28×28 grey images, enlarged to 16 px and standardised, reported
// as puzzles/s.
func BenchmarkJigsaw(b *testing.B) {
	ds := testDataset(b, 512, 28, 1)
	perms, _ := MaxHammingPermutations(100, 0)
	l, _, err := openJigsawLoader(ds, TileConfig{}, perms, ModernDefaults(), 16, 128, 1, 1)
	if err != nil {
		b.Fatal(err)
	}
	s := l.Stream(context.Background(), 0, 0)
	defer s.Close()
	b.ResetTimer()
	for range b.N {
		bt, err := s.Next()
		if err != nil {
			b.Fatal(err)
		}
		bt.Release()
	}
	b.ReportMetric(float64(b.N*128)/b.Elapsed().Seconds(), "puzzles/s")
}
