package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRunAndCompareVerbs(t *testing.T) {
	isolateCache(t)
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "run.json")
	cfg := `// a tiny run
{
  "out": "` + filepath.Join(dir, "run") + `",
  "dataset": {"path": "builtin:mnist-small"},
  "pretexts": ["ae-linear", "random"],
  "pretrain": {"steps": 4, "batch": 32, "encoder": {"widths": [4, 8]}, "val_every": -1, "val_batches": 2},
  "probe": {"protocol": {"grid": [0.001]}}
}`
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"run", cfgFile}, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
	}
	for _, want := range []string{"| ae-linear |", "| random |", "report.md"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout.String())
		}
	}
	if !strings.Contains(stderr.String(), "pretrain ae-linear seed 1: done") {
		t.Errorf("stderr does not log the stages:\n%s", stderr.String())
	}
	stdout.Reset()
	stderr.Reset()
	if code := run(context.Background(), []string{"run", cfgFile}, &stdout, &stderr); code != exitOK {
		t.Fatalf("rerun: exit %d; stderr:\n%s", code, stderr.String())
	}
	if n := strings.Count(stderr.String(), "finished earlier, skipped"); n != 4 {
		t.Errorf("rerun skipped %d stages, want 4:\n%s", n, stderr.String())
	}

	// compare is run with a generated config; a directory holding another
	// comparison is refused.
	out := filepath.Join(dir, "cmp")
	args := []string{"compare", "-o", out, "--dataset", "builtin:mnist-small", "--pretexts", "random,pixels", "--seeds", "2", "--widths", "4"}
	stdout.Reset()
	if code := run(context.Background(), args, &stdout, &stderr); code != exitOK {
		t.Fatalf("compare: exit %d; stderr:\n%s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "| pixels |") || !strings.Contains(stdout.String(), "2 seeds") {
		t.Errorf("compare output:\n%s", stdout.String())
	}
	stderr.Reset()
	args[len(args)-1] = "8"
	if code := run(context.Background(), args, &stdout, &stderr); code != exitFailure || !strings.Contains(stderr.String(), "another configuration") {
		t.Errorf("compare into another comparison's directory: exit %d, stderr %q", code, stderr.String())
	}
	for _, bad := range [][]string{
		{"compare", "--seeds", "0"},
		{"compare", "--widths", "4,x"},
		{"compare", "--low-shot", "0.01,x"},
		{"compare", "--lr-sweep", "-1"},
		{"compare", "--pretexts", "no-such-pretext", "-o", filepath.Join(dir, "x")},
		{"run"},
		{"run", filepath.Join(dir, "missing.json")},
	} {
		stderr.Reset()
		if code := run(context.Background(), bad, &stdout, &stderr); code != exitUsage {
			t.Errorf("%q: exit %d, want %d; stderr %q", bad, code, exitUsage, stderr.String())
		}
	}
}
