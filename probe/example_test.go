package probe_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/patchwise-ml/patchwise/probe"
)

// twoClusters returns n two-dimensional samples: class 0 around (1, 0),
// class 1 around (0, 1), alternating.
func twoClusters(n int, phase float32) *probe.Features {
	f := &probe.Features{N: n, D: 2, X: make([]float32, 2*n), Labels: make([]int, n), Classes: 2}
	for i := range n {
		c := i % 2
		wobble := 0.2 * float32((i*7)%11-5) / 5 * phase
		f.X[2*i+c] = 1 + wobble
		f.X[2*i+1-c] = 0.3 * wobble
		f.Labels[i] = c
	}
	return f
}

func ExampleEvaluate() {
	train, test := twoClusters(200, 1), twoClusters(50, -1)
	res, err := probe.Evaluate(context.Background(), train, test, probe.Config{Seed: 1}, probe.NoProgress{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("linear top-1 %.2f, 20-NN top-1 %.2f, 200-NN uses k = %d\n",
		res.LinearTop1, res.KNN20Top1, res.KNN[1].KUsed)
	fmt.Println("confusion:", res.Confusion)
	// Output:
	// linear top-1 1.00, 20-NN top-1 1.00, 200-NN uses k = 200
	// confusion: [[25 0] [0 25]]
}

func ExampleCached() {
	dir, err := os.MkdirTemp("", "features")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	key := probe.CacheKey{Encoder: "pixels", Dataset: "0123abcd", Split: "test"}
	compute := func() (*probe.Features, error) { return twoClusters(10, 1), nil }
	for range 2 {
		f, hit, err := probe.Cached(dir, key, compute)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("hit %v: %d samples of %d features\n", hit, f.N, f.D)
	}
	// Output:
	// hit false: 10 samples of 2 features
	// hit true: 10 samples of 2 features
}
