package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patchwise-ml/patchwise/data/builtin"
)

// mnistSmall materialises the embedded MNIST subset.
func mnistSmall(t *testing.T) string {
	t.Helper()
	ds, err := builtin.Materialize("mnist-small", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

func TestProbeVerb(t *testing.T) {
	ds := mnistSmall(t)
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	out := filepath.Join(dir, "probe")

	var stdout, stderr bytes.Buffer
	args := []string{"probe", "--random-encoder", "--widths", "4,8", "--seed", "2", "--train", ds, "--cache", cache, "--json", "-o", out}
	if code := run(context.Background(), args, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
	}
	var res map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("--json output: %v\n%s", err, stdout.String())
	}
	for _, k := range []string{"linear_top1", "knn20_top1", "knn200_top1", "per_class", "confusion", "protocol", "encoder"} {
		if _, ok := res[k]; !ok {
			t.Errorf("--json output has no %q", k)
		}
	}
	proto, _ := res["protocol"].(map[string]any)
	for _, k := range []string{"stage", "feature_dim", "l2", "grid", "knn", "seed", "train", "test", "encoder"} {
		if _, ok := proto[k]; !ok {
			t.Errorf("protocol has no %q", k)
		}
	}
	if acc, _ := res["linear_top1"].(float64); acc < 0.3 {
		t.Errorf("linear_top1 %v on MNIST: chance level", acc)
	}
	written, err := os.ReadFile(filepath.Join(out, "result.json"))
	if err != nil || !bytes.Equal(written, stdout.Bytes()) {
		t.Errorf("result.json differs from the printed JSON (%v)", err)
	}
	if entries, _ := os.ReadDir(cache); len(entries) == 0 {
		t.Error("nothing cached")
	}

	// Again: the features come from the cache, the numbers are the same,
	// and result.json is not overwritten.
	stdout.Reset()
	stderr.Reset()
	if code := run(context.Background(), args, &stdout, &stderr); code != exitFailure || !strings.Contains(stderr.String(), "already exists") {
		t.Errorf("second run into the same -o: exit %d, stderr %q", code, stderr.String())
	}
	args2 := append(args[:len(args)-2:len(args)-2], "-o", filepath.Join(dir, "probe2"))
	stdout.Reset()
	if code := run(context.Background(), args2, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
	}
	again, _ := os.ReadFile(filepath.Join(dir, "probe2", "result.json"))
	if !bytes.Equal(again, written) {
		t.Error("the cached features gave another result")
	}

	// Text output names the protocol.
	stdout.Reset()
	if code := run(context.Background(), []string{"probe", "--random-encoder", "--widths", "4,8", "--train", ds, "--cache", cache}, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
	}
	for _, want := range []string{"linear    top-1", "k-NN      top-1", "(k 20, T 0.07)", "chosen from", "per class"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, stdout.String())
		}
	}
}

func TestProbeVerbUsage(t *testing.T) {
	ds := mnistSmall(t)
	for _, c := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"no encoder", []string{"probe", "--train", ds}, exitUsage, "exactly one of"},
		{"two encoders", []string{"probe", "--pixels", "--random-encoder", "--train", ds}, exitUsage, "exactly one of"},
		{"no train", []string{"probe", "--pixels"}, exitUsage, "--train"},
		{"widths without random", []string{"probe", "--pixels", "--widths", "4", "--train", ds}, exitUsage, "--widths"},
		{"stage too deep", []string{"probe", "--random-encoder", "--widths", "4,8", "--stage", "3", "--train", ds, "--no-cache"}, exitUsage, "stage 3"},
		{"stage of pixels", []string{"probe", "--pixels", "--stage", "2", "--train", ds, "--no-cache"}, exitUsage, "raw pixels have no stages"},
		{"missing dataset", []string{"probe", "--pixels", "--train", filepath.Join(t.TempDir(), "nope"), "--no-cache"}, exitFailure, "nope"},
		{"missing checkpoint", []string{"probe", "--encoder", filepath.Join(t.TempDir(), "nope"), "--train", ds, "--no-cache"}, exitFailure, "nope"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), c.args, &stdout, &stderr)
			if code != c.code || !strings.Contains(stderr.String(), c.msg) {
				t.Errorf("exit %d (want %d), stderr %q (want %q)", code, c.code, stderr.String(), c.msg)
			}
		})
	}
}
