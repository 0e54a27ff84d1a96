package data

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// imageExts are the file name extensions of images in a folder, compared
// without regard to case.
var imageExts = map[string]bool{
	".jpg": true, ".jpeg": true, ".png": true, ".gif": true,
	".bmp": true, ".tif": true, ".tiff": true, ".webp": true,
}

// isImageName reports whether name has an image extension.
func isImageName(name string) bool {
	return imageExts[strings.ToLower(filepath.Ext(name))]
}

// Folder is a Source reading a folder of image files.
//
// When some top-level sub-folders of the root contain images (at any depth),
// the tree is labelled, as torchvision's ImageFolder: each such sub-folder
// is a class, classes are in sorted name order, and every image below a
// class folder has that class's label. Images directly in the root of a
// labelled tree are reported as items with Err set; sub-folders with no
// images are ignored. Otherwise the folder is unlabelled: its images (in
// the root only, since no sub-folder has any) have label -1.
//
// Images are recognised by extension (.jpg .jpeg .png .gif .bmp .tif .tiff
// .webp, any case); other files are ignored, as are names starting with a
// dot. The walk is in sorted order, so items come in the same order every
// time. Items have Path (the root joined with the relative path), Origin
// (the path relative to the root, slash-separated) and Split "" (train).
//
// Symbolic links to files are used like files. Symbolic links to folders
// are followed only when the Folder was made with followSymlinks; a link
// that leads back to a folder being walked (a loop), or to a folder already
// walked, is reported as an item with Err set rather than walked again.
// Dangling links, unreadable folders and files that are not regular files
// are reported as items with Err set too.
type Folder struct {
	root    string
	follow  bool
	classes []string
}

// NewFolder returns the image folder at root. It walks the tree once to
// find the classes; an error means root is not a readable folder.
func NewFolder(root string, followSymlinks bool) (*Folder, error) {
	fi, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("data: folder %q: %w", root, unwrapPathError(err))
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("data: folder %q: not a directory", root)
	}
	f := &Folder{root: root, follow: followSymlinks}
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("data: folder %q: %w", root, unwrapPathError(err))
	}
	errFound := errors.New("found")
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		full := filepath.Join(root, name)
		if !f.isDir(full, e) {
			continue
		}
		w := f.walker()
		err := w.walk(context.Background(), full, name, func(it Item) error {
			if it.Err == nil {
				return errFound
			}
			return nil
		})
		if err == errFound {
			f.classes = append(f.classes, name)
		}
	}
	return f, nil
}

// isDir reports whether the entry e at full is a folder to walk: a folder,
// or with f.follow a link to one.
func (f *Folder) isDir(full string, e fs.DirEntry) bool {
	if e.IsDir() {
		return true
	}
	if !f.follow || e.Type()&fs.ModeSymlink == 0 {
		return false
	}
	fi, err := os.Stat(full)
	return err == nil && fi.IsDir()
}

// Format returns "folder".
func (f *Folder) Format() string { return "folder" }

// Classes returns the class folder names in label order, or nil when the
// folder is unlabelled.
func (f *Folder) Classes() []string { return f.classes }

// Items yields every image under the root in sorted order (see Folder).
func (f *Folder) Items(ctx context.Context, yield func(Item) error) error {
	if f.classes == nil {
		w := f.walker()
		return w.walk(ctx, f.root, "", func(it Item) error {
			it.Label = -1
			return yield(it)
		})
	}
	ents, err := os.ReadDir(f.root)
	if err != nil {
		return fmt.Errorf("data: folder %q: %w", f.root, unwrapPathError(err))
	}
	label := map[string]int{}
	for i, c := range f.classes {
		label[c] = i
	}
	// Images in the root, in name order, then the classes: ReadDir sorts.
	w := f.walker()
	w.enterRoot(f.root)
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		full := filepath.Join(f.root, name)
		if i, ok := label[name]; ok {
			err := w.walk(ctx, full, name, func(it Item) error {
				if it.Err == nil {
					it.Label = i
				} else {
					it.Label = -1
				}
				return yield(it)
			})
			if err != nil {
				return err
			}
			continue
		}
		if f.isDir(full, e) {
			continue // a folder with no images
		}
		it, ok := w.file(full, name, e)
		if !ok {
			continue
		}
		it.Label = -1
		if it.Err == nil {
			it.Path = ""
			it.Err = &folderError{full, "image outside a class folder in a labelled tree"}
		}
		if err := yield(it); err != nil {
			return err
		}
	}
	return nil
}

// treeWalker walks a folder tree, remembering the folders it has entered
// (by their real paths) when following links, to detect loops.
type treeWalker struct {
	follow  bool
	visited map[string]string // real path → origin of the folder walked
	stack   map[string]bool   // real paths of the folders being walked
}

func (f *Folder) walker() *treeWalker {
	return &treeWalker{follow: f.follow, visited: map[string]string{}, stack: map[string]bool{}}
}

// enterRoot marks the folder full as being walked, so that a link back to
// it is a loop.
func (w *treeWalker) enterRoot(full string) {
	if !w.follow {
		return
	}
	if real, err := filepath.EvalSymlinks(full); err == nil {
		if abs, err := filepath.Abs(real); err == nil {
			real = abs
		}
		w.visited[real] = ""
		w.stack[real] = true
	}
}

// walk yields the images below the folder full, whose origin is rel, in
// sorted order; Label is left 0 for the caller to set.
func (w *treeWalker) walk(ctx context.Context, full, rel string, yield func(Item) error) error {
	if w.follow {
		real, err := filepath.EvalSymlinks(full)
		if err == nil {
			if abs, err2 := filepath.Abs(real); err2 == nil {
				real = abs
			}
			if w.stack[real] {
				return yield(errItem(full, rel, "symbolic link loop: leads back to a folder being walked"))
			}
			if prev, ok := w.visited[real]; ok {
				return yield(errItem(full, rel, fmt.Sprintf("folder already walked as %q", prev)))
			}
			w.visited[real] = rel
			w.stack[real] = true
			defer delete(w.stack, real)
		}
	}
	ents, err := os.ReadDir(full)
	if err != nil {
		if err := yield(errItem(full, rel, unwrapPathError(err).Error())); err != nil {
			return err
		}
		// ReadDir returns the entries it read before the error.
	}
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		p, r := filepath.Join(full, name), path.Join(rel, name)
		if e.IsDir() || (w.follow && e.Type()&fs.ModeSymlink != 0 && isDirLink(p)) {
			if err := w.walk(ctx, p, r, yield); err != nil {
				return err
			}
			continue
		}
		it, ok := w.file(p, r, e)
		if !ok {
			continue
		}
		if err := yield(it); err != nil {
			return err
		}
	}
	return nil
}

func isDirLink(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// file returns the item for the non-folder entry e at full (origin rel),
// and false when it is not an image to report: a link to a folder that is
// not followed, or a file without an image extension.
func (w *treeWalker) file(full, rel string, e fs.DirEntry) (Item, bool) {
	t := e.Type()
	if t&fs.ModeSymlink != 0 {
		fi, err := os.Stat(full)
		switch {
		case err != nil && isImageName(e.Name()):
			return errItem(full, rel, "dangling or unreadable symbolic link: "+unwrapPathError(err).Error()), true
		case err != nil:
			return Item{}, false
		case fi.IsDir():
			return Item{}, false
		}
		t = fi.Mode().Type()
	}
	if !isImageName(e.Name()) {
		return Item{}, false
	}
	if !t.IsRegular() {
		return errItem(full, rel, "not a regular file"), true
	}
	return Item{Origin: rel, Path: full}, true
}

func errItem(full, rel, msg string) Item {
	return Item{Label: -1, Origin: rel, Err: &folderError{full, msg}}
}

// folderError is why an entry of a folder cannot be an input.
type folderError struct {
	path string // the entry, the root joined with its origin
	msg  string // what is wrong, without the path
}

func (e *folderError) Error() string { return fmt.Sprintf("data: folder %q: %s", e.path, e.msg) }
