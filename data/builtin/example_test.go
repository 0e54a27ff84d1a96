package builtin_test

import (
	"fmt"
	"log"
	"os"

	"github.com/patchwise-ml/patchwise/data"
	"github.com/patchwise-ml/patchwise/data/builtin"
)

func ExampleMaterialize() {
	dir, err := os.MkdirTemp("", "datasets")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	path, err := builtin.Materialize("fashion-mnist-small", dir)
	if err != nil {
		log.Fatal(err)
	}
	d, err := data.Open(path)
	if err != nil {
		log.Fatal(err)
	}
	id, _ := builtin.ID("fashion-mnist-small")
	fmt.Println(d.ID() == id, d.Len(data.Train), d.Len(data.Test), d.Manifest().Classes[9])
	r, err := d.Read(data.Test, 0)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(r.Origin, len(r.Pixels))
	// Output:
	// true 10000 2000 Ankle boot
	// t10k-images-idx3-ubyte.gz#0 784
}
