package augment

import (
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"slices"
	"sync"
)

// Tiles is the number of tiles of a jigsaw puzzle: a 3×3 grid.
const Tiles = 9

// Default tile geometry, as fractions of the image's side. Noroozi &
// Favaro (2016) cut a 225-pixel crop of a 256-pixel image into 3×3 cells of
// 75 pixels and took a 64-pixel tile at a random place in each: tiles of a
// quarter of the side, neighbours 0–22 pixels apart. Here each tile is
// placed a fixed gap from its neighbours and then moved by the jitter, the
// gap twice the jitter so that neighbours may touch but never overlap:
const (
	DefaultTile       Length = 0.25  // 7 px at 28, 8 at 32, 16 at 64
	DefaultTileGap    Length = 0.07  // 2 px at 28 and 32, 4 at 64
	DefaultTileJitter Length = 0.035 // 1 px at 28 and 32, 2 at 64
)

// TileConfig says how the 3×3 tiles of a jigsaw puzzle are cut from an
// image. Its zero value means the Default* geometry, scaled to the image.
// Lengths are pixels or fractions of the image side (see Length).
type TileConfig struct {
	// Tile is the side of the (square) tiles; default DefaultTile, or
	// the largest tile that fits with the gap and jitter where rounding
	// makes that one pixel too big.
	Tile Length `json:"tile"`
	// Gap is the distance between neighbouring tiles before the jitter;
	// default DefaultTileGap; None for none.
	Gap Length `json:"gap"`
	// Jitter moves each tile by up to ±Jitter on each axis; default
	// DefaultTileJitter, or half the gap if that is less; None for none.
	// It must be at most half the gap, so that tiles never overlap.
	Jitter Length `json:"jitter"`
}

// TileGeometry is a TileConfig resolved for one image side: every length
// in pixels, checked to fit. Make one with TileConfig.Geometry.
type TileGeometry struct {
	Side              int // the image side it was resolved for
	Tile, Gap, Jitter int
}

// Span returns the side of the square that the jittered grid can cover:
// 3·Tile + 2·Gap + 2·Jitter.
func (g TileGeometry) Span() int { return 3*g.Tile + 2*g.Gap + 2*g.Jitter }

// TileGeometryError reports a tile geometry that cannot fit the image, or
// whose tiles could overlap. Its message states the largest geometry that
// would do. Test for it with errors.As.
type TileGeometryError struct {
	Side int    // the image side
	Msg  string // what does not fit, and what would
}

func (e *TileGeometryError) Error() string {
	return fmt.Sprintf("augment: jigsaw tiles on %d×%d images: %s", e.Side, e.Side, e.Msg)
}

// Geometry resolves c for side×side images and checks it, returning every
// problem at once: invalid lengths, and a geometry that does not fit or
// lets tiles overlap (a *TileGeometryError that states the largest
// geometry that would do).
func (c TileConfig) Geometry(side int) (TileGeometry, error) {
	if side < 1 {
		return TileGeometry{}, fmt.Errorf("augment: jigsaw tiles: image side %d: want at least 1", side)
	}
	var errs []error
	for _, f := range []struct {
		name string
		l    Length
	}{{"tile", c.Tile}, {"gap", c.Gap}, {"jitter", c.Jitter}} {
		if !f.l.valid() {
			errs = append(errs, fmt.Errorf("augment: jigsaw tiles: %s %v: want pixels (≥ 1), a fraction of the side (0 to 1), 0 for the default or none", f.name, float64(f.l)))
		}
	}
	if c.Tile == None {
		errs = append(errs, errors.New("augment: jigsaw tiles: tile none: the tiles must have a size"))
	}
	if len(errs) > 0 {
		return TileGeometry{}, errors.Join(errs...)
	}
	g := TileGeometry{Side: side, Tile: c.Tile.or(DefaultTile).Pixels(side), Gap: c.Gap.or(DefaultTileGap).Pixels(side),
		Jitter: c.Jitter.or(DefaultTileJitter).Pixels(side)}
	if c.Jitter == 0 {
		// Rounding can make the default jitter more than half the gap.
		g.Jitter = min(g.Jitter, g.Gap/2)
	}
	if c.Tile == 0 {
		// Rounding can make the default grid a pixel too big.
		g.Tile = min(g.Tile, (side-2*g.Gap-2*g.Jitter)/3)
	}
	geomErr := func(format string, args ...any) {
		errs = append(errs, &TileGeometryError{Side: side, Msg: fmt.Sprintf(format, args...)})
	}
	if g.Tile < 1 {
		if c.Tile == 0 {
			geomErr("the gap %d px and jitter %d px leave no room for tiles: they need %d px with 1-px tiles", g.Gap, g.Jitter, 2*g.Gap+2*g.Jitter+3)
		} else {
			geomErr("tile of %v rounds to 0 px", c.Tile)
		}
		return TileGeometry{}, errors.Join(errs...)
	}
	if g.Gap < 2*g.Jitter {
		geomErr("gap %d px is less than twice the jitter %d px, so neighbouring tiles could overlap: largest jitter with this gap is %d px, least gap with this jitter %d px",
			g.Gap, g.Jitter, g.Gap/2, 2*g.Jitter)
	}
	if need := g.Span(); need > side {
		msg := fmt.Sprintf("3×3 tiles of %d px with gap %d and jitter %d need %d px, image is %d", g.Tile, g.Gap, g.Jitter, need, side)
		if t := (side - 2*g.Gap - 2*g.Jitter) / 3; t >= 1 {
			msg += fmt.Sprintf(": largest tile that fits with this gap and jitter is %d px", t)
		} else {
			msg += fmt.Sprintf(": the gap and jitter alone need %d px with 1-px tiles", 2*g.Gap+2*g.Jitter+3)
		}
		if gap := (side - 3*g.Tile - 2*g.Jitter) / 2; gap >= 2*g.Jitter {
			msg += fmt.Sprintf("; largest gap with this tile and jitter is %d px", gap)
		}
		geomErr("%s", msg)
	}
	if len(errs) > 0 {
		return TileGeometry{}, errors.Join(errs...)
	}
	return g, nil
}

// Sample draws the 3×3 tiles of one puzzle from rng and returns them cell
// by cell, row by row from the top left. The jittered grid (side Span())
// is placed uniformly where it fits the image, so where a tile lies says
// nothing beyond its cell; then each tile, in cell order, moves by a
// uniform whole number of pixels in [−Jitter, Jitter] on each axis (x,
// then y). The draws: the grid's x and y, then two per tile.
func (g TileGeometry) Sample(rng *rand.Rand) [Tiles]Crop {
	step := g.Tile + g.Gap
	span := g.Span()
	ox := g.Jitter + rng.IntN(g.Side-span+1)
	oy := g.Jitter + rng.IntN(g.Side-span+1)
	j := 2*g.Jitter + 1
	var out [Tiles]Crop
	for cell := range out {
		x := ox + cell%3*step + rng.IntN(j) - g.Jitter
		y := oy + cell/3*step + rng.IntN(j) - g.Jitter
		out[cell] = Crop{X: x, Y: y, Size: g.Tile}
	}
	return out
}

// Permutation is an order of the tiles of a puzzle: slot i of a shuffled
// puzzle holds the tile of grid cell p[i], cells numbered row by row from
// the top left (0–8). In JSON (and as text) it is a string of the 9
// digits, "012345678" for the unshuffled order.
type Permutation [Tiles]uint8

// Valid reports whether p holds each of 0–8 once.
func (p Permutation) Valid() bool {
	var seen uint16
	for _, v := range p {
		if v >= Tiles || seen&(1<<v) != 0 {
			return false
		}
		seen |= 1 << v
	}
	return true
}

// String returns p's digits, "012345678" for the identity.
func (p Permutation) String() string {
	var b [Tiles]byte
	for i, v := range p {
		b[i] = '0' + v
	}
	return string(b[:])
}

// MarshalText implements encoding.TextMarshaler: p's digits. It fails
// for an invalid permutation.
func (p Permutation) MarshalText() ([]byte, error) {
	if !p.Valid() {
		return nil, fmt.Errorf("augment: permutation %v does not hold each of 0–8 once", [Tiles]uint8(p))
	}
	return []byte(p.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler: 9 digits holding
// each of 0–8 once.
func (p *Permutation) UnmarshalText(b []byte) error {
	var q Permutation
	if len(b) != Tiles {
		return fmt.Errorf("augment: permutation %q: want the 9 digits 0–8, each once", b)
	}
	for i, c := range b {
		if c < '0' || c > '8' {
			return fmt.Errorf("augment: permutation %q: want the 9 digits 0–8, each once", b)
		}
		q[i] = c - '0'
	}
	if !q.Valid() {
		return fmt.Errorf("augment: permutation %q: want the 9 digits 0–8, each once", b)
	}
	*p = q
	return nil
}

// pack returns p as 9 nibbles of a uint64, slot i in bits 4i to 4i+3.
func (p Permutation) pack() uint64 {
	var x uint64
	for i, v := range p {
		x |= uint64(v) << (4 * i)
	}
	return x
}

// nibbleLow has the lowest bit of each of the 9 nibbles set.
const nibbleLow = 0x111111111

// packedHamming returns the number of nibbles in which a and b differ.
func packedHamming(a, b uint64) int {
	x := a ^ b
	return bits.OnesCount64((x | x>>1 | x>>2 | x>>3) & nibbleLow)
}

// Hamming returns the number of slots in which a and b differ, 0 to 9.
func Hamming(a, b Permutation) int { return packedHamming(a.pack(), b.pack()) }

// MinHamming returns the least Hamming distance between two permutations
// of set, or 9 (the greatest possible) when set has fewer than two.
func MinHamming(set []Permutation) int {
	least := Tiles
	for i := range set {
		for j := range i {
			least = min(least, Hamming(set[i], set[j]))
		}
	}
	return least
}

// CheckPermutations reports every problem with a set of permutations at
// once: fewer than two of them, one that does not hold each cell once, one
// that repeats another (a puzzle's shuffle would not tell them apart).
func CheckPermutations(set []Permutation) error {
	var errs []error
	if len(set) < 2 {
		errs = append(errs, fmt.Errorf("augment: jigsaw: %d permutations: want at least 2", len(set)))
	}
	first := make(map[Permutation]int, len(set))
	for i, p := range set {
		if !p.Valid() {
			errs = append(errs, fmt.Errorf("augment: jigsaw: permutation %d %v does not hold each of 0–8 once", i, [Tiles]uint8(p)))
			continue
		}
		if j, ok := first[p]; ok {
			errs = append(errs, fmt.Errorf("augment: jigsaw: permutation %d %s repeats permutation %d", i, p, j))
			continue
		}
		first[p] = i
	}
	return errors.Join(errs...)
}

// AllPermutations is the number of orders of 9 tiles, 9!.
const AllPermutations = 362880

// MaxGenerated is the largest set MaxHammingPermutations makes: the
// greedy search takes time proportional to the set's size times 9! (about
// 3 s for a thousand permutations on one core of a shared 2-core AMD EPYC).
const MaxGenerated = 2000

// permStream separates the permutation set's draws from other uses of a
// seed.
const permStream = 0x6a69677361770001 // "jigsaw"

// MaxHammingPermutations returns n distinct permutations of the 9 tiles,
// far apart in Hamming distance, chosen greedily as in Noroozi & Favaro
// (2016, Algorithm 1): the first uniformly among all 9! from seed, then
// each next one among those not chosen the one farthest from the chosen
// set. Farthest means the greatest least distance to a chosen
// permutation (the pair hardest to tell apart is what limits a jigsaw
// classifier), then the greatest sum of distances to them (the paper's
// criterion), then a uniform draw from seed among the ties. The set
// depends only on n and seed.
//
// For n = 100 and seed 0 (the jigsaw pretext's defaults) the least
// distance between two permutations of the set is 6 and the mean 8.08
// (seeds 1 and 2: the same); for n = 10 the least is 8, for n = 30 and 64
// it is 7, for n = 1000 it is 5 (mean 8.01). Sets are kept for the life of
// the process, so asking again costs nothing; the caller gets its own
// copy. It returns an error unless 1 ≤ n ≤ MaxGenerated.
func MaxHammingPermutations(n int, seed uint64) ([]Permutation, error) {
	if n < 1 || n > MaxGenerated {
		return nil, fmt.Errorf("augment: jigsaw: %d permutations: want 1 to %d", n, MaxGenerated)
	}
	key := permKey{n, seed}
	permCache.Lock()
	defer permCache.Unlock()
	set, ok := permCache.sets[key]
	if !ok {
		set = maxHamming(n, seed)
		if permCache.sets == nil {
			permCache.sets = map[permKey][]Permutation{}
		}
		permCache.sets[key] = set
	}
	return slices.Clone(set), nil
}

type permKey struct {
	n    int
	seed uint64
}

// permCache keeps the sets MaxHammingPermutations made.
var permCache struct {
	sync.Mutex
	sets map[permKey][]Permutation
}

// maxHamming is MaxHammingPermutations without the cache.
func maxHamming(n int, seed uint64) []Permutation {
	all := make([]uint64, 0, AllPermutations)
	p := Permutation{0, 1, 2, 3, 4, 5, 6, 7, 8}
	for {
		all = append(all, p.pack())
		if !nextPermutation(p[:]) {
			break
		}
	}
	rng := rand.New(rand.NewPCG(seed, permStream))
	least := make([]uint8, len(all)) // least distance to a chosen one; 0 for the chosen
	sum := make([]uint32, len(all))  // sum of distances to the chosen ones
	for i := range least {
		least[i] = Tiles + 1
	}
	out := make([]Permutation, 0, n)
	pick := rng.IntN(len(all))
	for {
		c := all[pick]
		out = append(out, unpack(c))
		if len(out) == n {
			return out
		}
		// Update the distances and find the best key and its ties.
		bestLeast, bestSum, ties := uint8(0), uint32(0), 0
		for i, q := range all {
			d := uint8(packedHamming(q, c))
			l := min(least[i], d)
			least[i] = l
			s := sum[i] + uint32(d)
			sum[i] = s
			switch {
			case l > bestLeast || l == bestLeast && s > bestSum:
				bestLeast, bestSum, ties = l, s, 1
			case l == bestLeast && s == bestSum:
				ties++
			}
		}
		k := rng.IntN(ties)
		for i := range all {
			if least[i] == bestLeast && sum[i] == bestSum {
				if k == 0 {
					pick = i
					break
				}
				k--
			}
		}
	}
}

// unpack is the inverse of Permutation.pack.
func unpack(x uint64) Permutation {
	var p Permutation
	for i := range p {
		p[i] = uint8(x >> (4 * i) & 0xf)
	}
	return p
}

// nextPermutation rearranges p into the next permutation in lexicographic
// order and reports whether there was one.
func nextPermutation(p []uint8) bool {
	i := len(p) - 2
	for i >= 0 && p[i] >= p[i+1] {
		i--
	}
	if i < 0 {
		return false
	}
	j := len(p) - 1
	for p[j] <= p[i] {
		j--
	}
	p[i], p[j] = p[j], p[i]
	for l, r := i+1, len(p)-1; l < r; l, r = l+1, r-1 {
		p[l], p[r] = p[r], p[l]
	}
	return true
}

// JigsawSampler draws the puzzles of the jigsaw pretext (Noroozi & Favaro
// 2016): one view of the 9 tiles of a 3×3 grid (TileGeometry.Sample), in
// the shuffled order of one of a set of permutations — slot i holds the
// tile of cell perm[i] — each resized to Size×Size and transformed on its
// own; and one label, the permutation's index in the set. The draws, all
// from the sample's generator: the permutation, the tiles' places, then
// the transform of each tile in slot order.
type JigsawSampler struct {
	geom      TileGeometry
	perms     []Permutation
	transform Transform
	size, c   int
}

// NewJigsawSampler resolves the tile geometry cfg for side×side images of
// c channels and returns its sampler, with the permutations perms (in the
// order that gives the labels), tiles resized to size×size (0: the tile
// side) and transformed by t. It returns every problem at once: a
// geometry that does not fit (a *TileGeometryError), a bad set of
// permutations (CheckPermutations), a bad transform, a negative size.
func NewJigsawSampler(cfg TileConfig, perms []Permutation, t Transform, side, c, size int) (*JigsawSampler, error) {
	var errs []error
	g, err := cfg.Geometry(side)
	if err != nil {
		errs = append(errs, err)
	}
	if err := CheckPermutations(perms); err != nil {
		errs = append(errs, err)
	}
	if err := t.Validate(); err != nil {
		errs = append(errs, err)
	}
	if size < 0 {
		errs = append(errs, fmt.Errorf("augment: jigsaw: size %d: want ≥ 1, or 0 for the tile size", size))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if size == 0 {
		size = g.Tile
	}
	return &JigsawSampler{geom: g, perms: slices.Clone(perms), transform: t, size: size, c: c}, nil
}

// Geometry returns the tile geometry resolved for the images.
func (s *JigsawSampler) Geometry() TileGeometry { return s.geom }

// Permutations returns the number of permutations, the labels' range.
func (s *JigsawSampler) Permutations() int { return len(s.perms) }

// Views returns the one view of the 9 shuffled tiles.
func (s *JigsawSampler) Views() []View {
	return []View{{Name: "shuffled tiles", Count: Tiles, Side: s.size}}
}

// Labels returns 1: the permutation's index.
func (s *JigsawSampler) Labels() int { return 1 }

// NewDrawer returns a drawer with its own tile buffer and resizer.
func (s *JigsawSampler) NewDrawer() Drawer {
	t := s.geom.Tile
	d := &jigsawDrawer{s: s, tile: NewPatch(t, t, s.c)}
	if t != s.size {
		d.resize = newResizer(t, t, s.size, s.size, s.c)
	}
	return d
}

type jigsawDrawer struct {
	s      *JigsawSampler
	tile   Patch    // tile × tile × C
	resize *resizer // nil when the tile is already the output size
}

func (d *jigsawDrawer) Draw(img Image, rng *rand.Rand, smp Sample) error {
	s := d.s
	label := rng.IntN(len(s.perms))
	cells := s.geom.Sample(rng)
	smp.Labels[0] = label
	per := s.size * s.size * img.C
	for slot, cell := range s.perms[label] {
		out := Patch{Pix: smp.Views[0][slot*per : (slot+1)*per], W: s.size, H: s.size, C: img.C}
		cropResized(out, d.tile, d.resize, img, cells[cell])
		s.transform.Apply(out, rng)
	}
	return nil
}
