// Command synthdata writes a synthetic dataset of generated pictures, as
// large as asked, for measurements that need a dataset of a given size
// (bench/rss-scale): each image is a smooth two-colour gradient with a few
// filled rectangles and discs of random colours, drawn from a generator
// seeded by the seed and the image's index. Such pictures compress about
// as well as photos do, unlike random noise, so half a million of them fit
// on a disk.
//
//	go run ./bench/synthdata -o DIR -n 500000 [-val 50000] [-size 32] [-channels 3] [-seed 1]
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"

	"github.com/patchwise-ml/patchwise/data"
)

func main() {
	out := flag.String("o", "", "dataset `dir`ectory to create")
	n := flag.Int("n", 50000, "training images")
	val := flag.Int("val", 0, "validation images")
	size := flag.Int("size", 32, "image side in pixels")
	channels := flag.Int("channels", 3, "channels, 1 or 3")
	seed := flag.Uint64("seed", 1, "seed of the pictures")
	flag.Parse()
	if *out == "" || *n < 1 || *val < 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := write(*out, *n, *val, *size, *channels, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "synthdata:", err)
		os.Exit(1)
	}
}

const classes = 10

func write(dir string, n, val, size, ch int, seed uint64) error {
	names := make([]string, classes)
	for c := range names {
		names[c] = fmt.Sprint(c)
	}
	w, err := data.Create(dir, data.Preprocess{Size: size, Channels: ch}, names,
		data.Provenance{Format: "generated", Notes: fmt.Sprintf("bench/synthdata: %d+%d pictures, seed %d", n, val, seed)})
	if err != nil {
		return err
	}
	defer w.Abort()
	px := make([]uint8, size*size*ch)
	for i := range n + val {
		split := data.Train
		if i >= n {
			split = data.Val
		}
		label := draw(px, size, ch, rand.New(rand.NewPCG(seed, uint64(i))))
		if err := w.Add(split, data.Record{Pixels: px, Label: label, Origin: fmt.Sprint("synth#", i)}); err != nil {
			return err
		}
	}
	m, id, err := w.Close()
	if err != nil {
		return err
	}
	fmt.Printf("%s: %d shards, id %.12s\n", dir, len(m.Shards), id)
	return nil
}

// draw paints one picture into px and returns its class: the number of
// shapes on it, modulo classes.
func draw(px []uint8, size, ch int, rng *rand.Rand) int {
	var a, b [3]float64
	for c := range 3 {
		a[c], b[c] = float64(rng.IntN(256)), float64(rng.IntN(256))
	}
	for y := range size {
		t := float64(y) / float64(size)
		for x := range size {
			for c := range ch {
				px[(y*size+x)*ch+c] = uint8(a[c] + (b[c]-a[c])*t)
			}
		}
	}
	shapes := 1 + rng.IntN(6)
	for range shapes {
		var col [3]uint8
		for c := range 3 {
			col[c] = uint8(rng.IntN(256))
		}
		x0, y0 := rng.IntN(size), rng.IntN(size)
		r := 2 + rng.IntN(size/3)
		disc := rng.IntN(2) == 0
		for y := max(0, y0-r); y < min(size, y0+r); y++ {
			for x := max(0, x0-r); x < min(size, x0+r); x++ {
				if disc && (x-x0)*(x-x0)+(y-y0)*(y-y0) > r*r {
					continue
				}
				for c := range ch {
					px[(y*size+x)*ch+c] = col[c]
				}
			}
		}
	}
	return shapes % classes
}
