package data

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ClassesFile is the name of the file, in the folder an ingest input
// names, that gives the input's class names: one per line, in label
// order. It overrides the names the source has of its own (the class
// folder names of an image tree, "0" to "9" for IDX files, a binary
// dataset's names file).
const ClassesFile = "classes.txt"

// Limits on class names.
const (
	maxClassesFile = 1 << 20 // bytes of a classes file
	maxClassName   = 256     // bytes of one name
)

// ClassNamesError reports a bad list of class names: an empty or repeated
// name, a name that is too long, or a count that does not match the
// labels. Path is the classes file, or "" for names given as a list; Line
// is the 1-based line of the file or position in the list, or 0 when the
// problem is the list as a whole. Test for it with errors.As.
type ClassNamesError struct {
	Path string
	Line int
	Msg  string
}

func (e *ClassNamesError) Error() string {
	var b strings.Builder
	b.WriteString("data: class names")
	if e.Path != "" {
		fmt.Fprintf(&b, " %q", e.Path)
	}
	switch {
	case e.Line > 0 && e.Path != "":
		fmt.Fprintf(&b, ": line %d", e.Line)
	case e.Line > 0:
		fmt.Fprintf(&b, ": name %d", e.Line)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// ParseClassNames reads class names from b, the contents of the classes
// file path (used in errors only): one name per line, in label order, with
// surrounding white space (a CR of a CRLF line end too) trimmed. Blank
// lines after the last name are ignored; a blank line before it, a
// repeated name or a name over 256 bytes gives a *ClassNamesError naming
// path and the line. A file with no names is an error too.
func ParseClassNames(path string, b []byte) ([]string, error) {
	lines := strings.Split(string(b), "\n")
	for len(lines) > 0 && strings.TrimSpace(lines[len(lines)-1]) == "" {
		lines = lines[:len(lines)-1]
	}
	if len(lines) == 0 {
		return nil, &ClassNamesError{Path: path, Msg: "no names: want one per line, in label order"}
	}
	names := make([]string, len(lines))
	for i, l := range lines {
		names[i] = strings.TrimSpace(l)
	}
	if err := checkClassNames(path, names); err != nil {
		return nil, err
	}
	return names, nil
}

// ReadClassNames reads the classes file at path (see ParseClassNames).
// A missing file gives an error matching fs.ErrNotExist.
func ReadClassNames(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("data: class names: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxClassesFile+1))
	if err != nil {
		return nil, fmt.Errorf("data: class names %q: %w", path, err)
	}
	if len(b) > maxClassesFile {
		return nil, &ClassNamesError{Path: path, Msg: fmt.Sprintf("file over %d bytes", maxClassesFile)}
	}
	return ParseClassNames(path, b)
}

// CheckClassNames checks a list of class names given directly (not read
// from a file): none may be empty, repeated, over 256 bytes, or hold a
// line break. Its error is a *ClassNamesError giving the 1-based position
// of the first bad name.
func CheckClassNames(names []string) error {
	if len(names) == 0 {
		return &ClassNamesError{Msg: "no names"}
	}
	return checkClassNames("", names)
}

func checkClassNames(path string, names []string) error {
	first := make(map[string]int, len(names))
	for i, n := range names {
		bad := func(format string, args ...any) error {
			return &ClassNamesError{Path: path, Line: i + 1, Msg: fmt.Sprintf(format, args...)}
		}
		switch {
		case n == "":
			return bad("empty name (names are one per line, in label order)")
		case len(n) > maxClassName:
			return bad("name of %d bytes: at most %d allowed", len(n), maxClassName)
		case strings.ContainsAny(n, "\r\n"):
			return bad("name %q holds a line break", n)
		}
		if j, ok := first[n]; ok {
			what := "name"
			if path != "" {
				what = "line"
			}
			return bad("%q repeats %s %d", n, what, j+1)
		}
		first[n] = i
	}
	return nil
}

// classNamesFor returns the class names an ingest gives a source whose own
// names are own, read from the input folder's ClassesFile; nil when the
// folder has none. input is the path the ingest was given.
func classNamesFor(input string, own []string) ([]string, string, error) {
	path := filepath.Join(input, ClassesFile)
	names, err := ReadClassNames(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, "", nil
	case err != nil:
		return nil, "", err
	}
	if err := matchClassCount(path, names, own); err != nil {
		return nil, "", err
	}
	return names, path, nil
}

// matchClassCount checks that names (from path, or given as a list when
// path is "") can name the classes own of the sources.
func matchClassCount(path string, names, own []string) error {
	switch {
	case len(own) == 0:
		return &ClassNamesError{Path: path, Msg: fmt.Sprintf("%d names for an unlabelled source (an image folder without class folders has no classes to name)", len(names))}
	case len(names) != len(own):
		return &ClassNamesError{Path: path, Msg: fmt.Sprintf("%d names, but the source has %d classes (%s)", len(names), len(own), listNames(own, 12))}
	}
	return nil
}
