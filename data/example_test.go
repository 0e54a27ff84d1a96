package data_test

import (
	"bytes"
	"errors"
	"fmt"
	"log"

	"github.com/patchwise-ml/patchwise/data"
)

func ExampleReadIDX() {
	// Two 2×3 images: magic 00 00 08 03, dims 2, 2, 3, then 12 pixels.
	in := []byte{
		0, 0, 8, 3,
		0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3,
		0, 1, 2, 3, 4, 5,
		6, 7, 8, 9, 10, 11,
	}
	m, err := data.ReadIDX(bytes.NewReader(in))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(m.Dims, m.Data[3:6])

	// The same stream cut short is a *FormatError.
	_, err = data.ReadIDX(bytes.NewReader(in[:20]))
	var fe *data.FormatError
	fmt.Println(errors.As(err, &fe), err)
	// Output:
	// [2 2 3] [3 4 5]
	// true data: idx: offset 16: truncated: want 12 bytes of data, got 4
}

func ExampleLoadIDXPair() {
	train, _, err := data.FindIDX("/usr/share/datasets/fashion-mnist")
	if err != nil {
		log.Fatal(err)
	}
	d, err := data.LoadIDXPair(train.Images, train.Labels)
	if err != nil {
		log.Fatal(err)
	}
	// Image i is d.Pixels[i*d.H*d.W : (i+1)*d.H*d.W], with label d.Labels[i].
	fmt.Println(d.N, d.H, d.W)
}
