package data

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseClassNames(t *testing.T) {
	for _, c := range []struct {
		name, in string
		want     []string
		line     int    // of the error; 0 with want set means no error
		msg      string // in the error
	}{
		{"plain", "a\nb\nc\n", []string{"a", "b", "c"}, 0, ""},
		{"no final newline", "a\nb", []string{"a", "b"}, 0, ""},
		{"CRLF and blanks", " T-shirt/top \r\nAnkle boot\r\n\r\n  \n", []string{"T-shirt/top", "Ankle boot"}, 0, ""},
		{"blank line inside", "a\n\nb\n", nil, 2, "empty name"},
		{"blank first line", "\na\nb\n", nil, 1, "empty name"},
		{"repeated", "a\nb\nc\nb\n", nil, 4, `"b" repeats line 2`},
		{"too long", "a\n" + strings.Repeat("x", 300) + "\n", nil, 2, "300 bytes"},
		{"empty file", "", nil, 0, "no names"},
		{"only blanks", "\n \n", nil, 0, "no names"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseClassNames("dir/classes.txt", []byte(c.in))
			if c.want != nil {
				if err != nil || !slices.Equal(got, c.want) {
					t.Fatalf("got %q, %v; want %q", got, err, c.want)
				}
				return
			}
			var ce *ClassNamesError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want a *ClassNamesError", err)
			}
			if ce.Path != "dir/classes.txt" || ce.Line != c.line || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("error %q (path %q, line %d): want line %d and %q", err, ce.Path, ce.Line, c.line, c.msg)
			}
			if c.line > 0 && !strings.Contains(err.Error(), `"dir/classes.txt": line `) {
				t.Errorf("error %q does not name the file and line", err)
			}
		})
	}
}

func TestCheckClassNames(t *testing.T) {
	if err := CheckClassNames([]string{"cat", "dog"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		names []string
		pos   int
	}{{nil, 0}, {[]string{"a", ""}, 2}, {[]string{"a", "b", "a"}, 3}, {[]string{"a\nb"}, 1}} {
		err := CheckClassNames(c.names)
		var ce *ClassNamesError
		if !errors.As(err, &ce) || ce.Line != c.pos || ce.Path != "" {
			t.Errorf("CheckClassNames(%q) = %v, want a *ClassNamesError at name %d", c.names, err, c.pos)
		}
	}
}

func TestReadClassNames(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadClassNames(filepath.Join(dir, ClassesFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: err = %v, want fs.ErrNotExist", err)
	}
	p := writeFile(t, dir, ClassesFile, []byte("x\ny\n"))
	if got, err := ReadClassNames(p); err != nil || !slices.Equal(got, []string{"x", "y"}) {
		t.Errorf("got %q, %v", got, err)
	}
}

// TestIngestClassNames checks where an ingest takes its class names from:
// the sources, a classes.txt in an input folder, or the configuration
// (a list, or a file), in that rising order of precedence; and that a
// wrong count or an unlabelled source is refused, writing nothing.
func TestIngestClassNames(t *testing.T) {
	digits := []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}
	fashion := []string{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}
	idx := func(t *testing.T, classesTxt string) string {
		dir := t.TempDir()
		writeIDXDir(t, dir, []byte{9, 0})
		if classesTxt != "" {
			writeFile(t, dir, ClassesFile, []byte(classesTxt))
		}
		return dir
	}
	folder := func(t *testing.T, classesTxt string) string {
		root := tree(t, "cat/a.png", "dog/b.png")
		if classesTxt != "" {
			writeFile(t, root, ClassesFile, []byte(classesTxt))
		}
		return root
	}
	namesFile := writeFile(t, t.TempDir(), "names.txt", []byte("Kitten\nPuppy\n"))
	for _, c := range []struct {
		name      string
		input     func(*testing.T) string
		classes   []string
		file      string
		want      []string
		wantNotes string // in the manifest's provenance
		err       string // the error instead
	}{
		{"idx own", func(t *testing.T) string { return idx(t, "") }, nil, "", digits, "", ""},
		{"idx classes.txt", func(t *testing.T) string { return idx(t, strings.Join(fashion, "\n")+"\n") }, nil, "", fashion, ClassesFile, ""},
		{"idx list over classes.txt", func(t *testing.T) string { return idx(t, strings.Join(fashion, "\n")) },
			[]string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"}, "", []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"}, "given to ingest", ""},
		{"idx wrong count", func(t *testing.T) string { return idx(t, "a\nb\n") }, nil, "", nil, "", `classes.txt": 2 names, but the source has 10 classes`},
		{"idx bad classes.txt", func(t *testing.T) string { return idx(t, "a\nb\na\n") }, nil, "", nil, "", `classes.txt": line 3: "a" repeats line 1`},
		{"folder own", func(t *testing.T) string { return folder(t, "") }, nil, "", []string{"cat", "dog"}, "", ""},
		{"folder classes.txt", func(t *testing.T) string { return folder(t, "Felis catus\nCanis familiaris\n") }, nil, "", []string{"Felis catus", "Canis familiaris"}, ClassesFile, ""},
		{"folder file over classes.txt", func(t *testing.T) string { return folder(t, "Felis catus\nCanis familiaris\n") }, nil, namesFile, []string{"Kitten", "Puppy"}, "names.txt", ""},
		{"folder list wrong count", func(t *testing.T) string { return folder(t, "") }, []string{"a", "b", "c"}, "", nil, "", "3 names, but the source has 2 classes (cat, dog)"},
		{"unlabelled folder", func(t *testing.T) string {
			root := tree(t, "a.png", "b.png")
			writeFile(t, root, ClassesFile, []byte("x\ny\n"))
			return root
		}, nil, "", nil, "", "unlabelled"},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := c.input(t)
			out := filepath.Join(t.TempDir(), "ds")
			rep, err := Ingest(context.Background(), IngestConfig{Inputs: []string{in}, Out: out, Classes: c.classes, ClassesFile: c.file,
				Preprocess: Preprocess{Size: 4, Channels: 1}}, noProgress{})
			if c.err != "" {
				var ce *ClassNamesError
				if !errors.As(err, &ce) || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want a *ClassNamesError saying %q", err, c.err)
				}
				if _, err := os.Stat(out); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("a refused ingest left %s", out)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(rep.Manifest.Classes, c.want) {
				t.Errorf("classes %q, want %q", rep.Manifest.Classes, c.want)
			}
			if notes := rep.Manifest.Source.Notes; c.wantNotes == "" && notes != "" || !strings.Contains(notes, c.wantNotes) {
				t.Errorf("provenance notes %q, want them to mention %q", notes, c.wantNotes)
			}
		})
	}
}

// TestIngestClassesConfig checks that the configuration's names are
// validated with every other problem.
func TestIngestClassesConfig(t *testing.T) {
	cfg := IngestConfig{Inputs: []string{"x"}, Out: "y", Classes: []string{"a", ""}, ClassesFile: "names.txt"}
	err := cfg.Validate()
	var ce *ClassNamesError
	if !errors.As(err, &ce) || ce.Line != 2 || !strings.Contains(err.Error(), "both as a list and as a file") {
		t.Fatalf("err = %v, want both problems", err)
	}
}
