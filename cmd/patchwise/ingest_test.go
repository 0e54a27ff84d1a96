package main

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestIngestAndInspect runs ingest on a folder with good and bad images
// (exit 3, the bad one named), then inspect on the result, as a user would.
func TestIngestAndInspect(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "photos")
	img := image.NewGray(image.Rect(0, 0, 20, 10))
	for i := range img.Pix {
		img.Pix[i] = uint8(i)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		name string
		b    []byte
	}{
		{"a/one.png", buf.Bytes()}, {"a/two.png", buf.Bytes()}, {"b/three.png", buf.Bytes()},
		{"b/broken.jpg", []byte("not a jpeg")},
	} {
		p := filepath.Join(src, f.name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "ds")
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"ingest", src, "-o", out, "--size", "8", "--channels", "1"}, &stdout, &stderr)
	if code != exitSkipped {
		t.Fatalf("ingest exit %d, want %d; stderr:\n%s", code, exitSkipped, stderr.String())
	}
	if !strings.Contains(stderr.String(), "b/broken.jpg") {
		t.Errorf("stderr does not name the bad file:\n%s", stderr.String())
	}
	if !strings.Contains(stdout.String(), "train     3") {
		t.Errorf("summary:\n%s", stdout.String())
	}

	// A second ingest to the same place is refused, and the first is intact.
	stdout.Reset()
	stderr.Reset()
	if code := run(context.Background(), []string{"ingest", src, "-o", out}, &stdout, &stderr); code != exitFailure {
		t.Fatalf("second ingest exit %d, want %d", code, exitFailure)
	}

	stdout.Reset()
	stderr.Reset()
	sheet := filepath.Join(dir, "sheet.png")
	if code := run(context.Background(), []string{"inspect", "--json", out, "--sheet", sheet}, &stdout, &stderr); code != exitOK {
		t.Fatalf("inspect exit %d; stderr:\n%s", code, stderr.String())
	}
	var got struct {
		ID            string         `json:"id"`
		FormatVersion int            `json:"format_version"`
		Size          int            `json:"size"`
		Channels      int            `json:"channels"`
		Classes       []string       `json:"classes"`
		Splits        map[string]int `json:"splits"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
		t.Fatalf("inspect --json: %v\n%s", err, stdout.String())
	}
	if len(got.ID) != 64 || got.FormatVersion != 1 || got.Size != 8 || got.Channels != 1 ||
		strings.Join(got.Classes, ",") != "a,b" || got.Splits["train"] != 3 {
		t.Errorf("inspect --json = %+v", got)
	}
	if _, err := os.Stat(sheet); err != nil {
		t.Errorf("no contact sheet: %v", err)
	}
	// The sheet is never overwritten.
	if code := run(context.Background(), []string{"inspect", out, "--sheet", sheet}, &stdout, &stderr); code != exitUsage {
		t.Errorf("inspect over an existing sheet: exit %d, want %d", code, exitUsage)
	}
}
