package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/patchwise-ml/patchwise/pipeline"
)

// TestRun runs the dispatcher on command lines that need no pipeline work
// and checks exit codes and output.
func TestRun(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		codes    []int    // acceptable exit codes
		stdout   []string // substrings stdout must contain
		stderr   []string // substrings stderr must contain
		noStderr bool     // stderr must be empty
	}{
		{name: "no args", args: nil, codes: []int{0}, stdout: []string{"bench", "version", "help"}, noStderr: true},
		{name: "help", args: []string{"help"}, codes: []int{0}, stdout: []string{"bench"}, noStderr: true},
		{name: "help bench", args: []string{"help", "bench"}, codes: []int{0}, stdout: []string{"usage: patchwise bench", "Example:", "--batch"}, noStderr: true},
		{name: "bench --help", args: []string{"bench", "--help"}, codes: []int{0}, stdout: []string{"Example:", "torch_ref.py", "--json"}, noStderr: true},
		{name: "bench -h", args: []string{"bench", "-h"}, codes: []int{0}, stdout: []string{"Example:"}, noStderr: true},
		{name: "version", args: []string{"version"}, codes: []int{0}, stdout: []string{"patchwise ", "go1."}, noStderr: true},
		{name: "unknown verb", args: []string{"frobnicate"}, codes: []int{2}, stderr: []string{`"frobnicate"`, "run 'patchwise help'"}},
		{name: "help unknown verb", args: []string{"help", "frobnicate"}, codes: []int{2}, stderr: []string{`"frobnicate"`}},
		{name: "bad flag value", args: []string{"bench", "--batch", "x"}, codes: []int{2}, stderr: []string{"patchwise: bench:", "batch"}},
		{name: "undefined flag", args: []string{"bench", "--nope"}, codes: []int{2}, stderr: []string{"nope", "run 'patchwise help bench'"}},
		{name: "stray argument", args: []string{"bench", "extra"}, codes: []int{2}, stderr: []string{`"extra"`}},
		{name: "batch 0", args: []string{"bench", "--batch", "0"}, codes: []int{2}, stderr: []string{"--batch"}},
		{name: "size -1", args: []string{"bench", "--size", "-1"}, codes: []int{2}, stderr: []string{"--size"}},
		{name: "steps 0", args: []string{"bench", "--steps", "0"}, codes: []int{2}, stderr: []string{"--steps"}},
		{name: "channels 2", args: []string{"bench", "--channels", "2"}, codes: []int{2}, stderr: []string{"--channels"}},
		{
			name:  "every problem at once",
			args:  []string{"bench", "--batch", "0", "--channels", "4"},
			codes: []int{2}, stderr: []string{"patchwise: bench: --batch", "patchwise: bench: --channels"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tt.args, &stdout, &stderr)
			ok := false
			for _, c := range tt.codes {
				ok = ok || c == code
			}
			if !ok {
				t.Errorf("exit code %d, want one of %v\nstderr: %s", code, tt.codes, stderr.String())
			}
			for _, s := range tt.stdout {
				if !strings.Contains(stdout.String(), s) {
					t.Errorf("stdout lacks %q:\n%s", s, stdout.String())
				}
			}
			for _, s := range tt.stderr {
				if !strings.Contains(stderr.String(), s) {
					t.Errorf("stderr lacks %q:\n%s", s, stderr.String())
				}
			}
			if tt.noStderr && stderr.Len() > 0 {
				t.Errorf("unexpected stderr:\n%s", stderr.String())
			}
		})
	}
}

// TestExitCode checks the mapping from errors to exit codes.
func TestExitCode(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	bg := context.Background()
	tests := []struct {
		name string
		ctx  context.Context
		err  error
		want int
	}{
		{"nil", bg, nil, 0},
		{"failure", bg, errTest, 1},
		{"usage", bg, &usageError{verb: "bench", err: errTest}, 2},
		{"skipped", bg, fmt.Errorf("ingest: %w", errSkipped), 3},
		{"not ready", bg, &notReadyError{errTest}, 4},
		{"canceled", bg, fmt.Errorf("bench: %w", context.Canceled), 130},
		{"failure after interrupt", cancelled, errTest, 130},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := exitCode(tt.ctx, tt.err); got != tt.want {
				t.Errorf("exitCode(%v) = %d, want %d", tt.err, got, tt.want)
			}
		})
	}
}

var errTest = errors.New("boom")

// TestWriteBenchResults checks the table and the JSON lines.
func TestWriteBenchResults(t *testing.T) {
	rs := []pipeline.BenchResult{
		{Model: "classifier", Impl: "patchwise", Batch: 128, StepMS: 50.04, SamplesPerS: 2557.9, PeakRSSMB: 236.4, Threads: 2},
		{Model: "relpos", Impl: "patchwise", Batch: 128, StepMS: 120, SamplesPerS: 1066.7, Threads: 2},
	}
	var table bytes.Buffer
	if err := writeBenchResults(&table, rs, false); err != nil {
		t.Fatal(err)
	}
	want := `model       batch  step ms  samples/s  peak MiB  threads
classifier  128    50.0     2558       236       2
relpos      128    120.0    1067       0         2
`
	if table.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", table.String(), want)
	}

	var lines bytes.Buffer
	if err := writeBenchResults(&lines, rs, true); err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSuffix(lines.String(), "\n"), "\n")
	if len(got) != len(rs) {
		t.Fatalf("got %d JSON lines, want %d:\n%s", len(got), len(rs), lines.String())
	}
	for i, line := range got {
		var r pipeline.BenchResult
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		if r != rs[i] {
			t.Errorf("line %d = %+v, want %+v", i, r, rs[i])
		}
	}
}

// TestBarProgress drives the progress bars through a bounded task, an
// unbounded one and a task left open, writing to a buffer.
func TestBarProgress(t *testing.T) {
	var buf bytes.Buffer
	p := &barProgress{w: &buf}
	p.Start("epoch 1", 3)
	for range 3 {
		p.Add(1)
	}
	p.Done()
	p.Start("scanning", -1)
	p.Add(5)
	p.Start("next", 2) // ends "scanning"
	p.Add(1)
	p.Done()
	p.Done()
	if !strings.Contains(buf.String(), "epoch 1") {
		t.Errorf("output lacks the task name:\n%q", buf.String())
	}
	if _, ok := newProgress(&buf).(pipeline.NoProgress); !ok {
		t.Error("newProgress(buffer) is not pipeline.NoProgress")
	}
}
