package data

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/patchwise-ml/patchwise/internal/fsutil"
)

// DatasetVersion is the format_version of the dataset format this build
// writes and reads: manifest.json and the shard layout described in shard.go.
const DatasetVersion = 1

// ManifestFile is the name of a dataset's manifest inside its directory.
const ManifestFile = "manifest.json"

// Limits on what Open accepts from a manifest, so that reading a shard never
// allocates more than these allow.
const (
	maxManifestBytes = 64 << 20
	maxShardFile     = 1 << 30 // compressed bytes
	maxShardRecs     = 1 << 20
	maxShardPixels   = 1 << 30 // records × pixel bytes
)

// Manifest describes a dataset. It is stored as manifest.json, written with
// json.MarshalIndent, and holds no timestamps: the same input gives the same
// bytes, and the dataset ID is the SHA-256 of those bytes.
type Manifest struct {
	FormatVersion int            `json:"format_version"` // DatasetVersion
	Size          int            `json:"size"`           // image side in pixels
	Channels      int            `json:"channels"`       // 1 (grey) or 3 (RGB)
	Classes       []string       `json:"classes"`        // label names in label order; empty when unlabelled
	Splits        map[string]int `json:"splits"`         // split name → record count; only non-empty splits
	Shards        []ShardInfo    `json:"shards"`         // by split name, then in order within the split
	Preprocessing Preprocess     `json:"preprocessing"`  // with defaults filled in
	Source        Provenance     `json:"source"`
	Duplicates    int            `json:"duplicates"` // records ingest found to duplicate an earlier one
	Skipped       int            `json:"skipped"`    // inputs ingest could not use
}

// ShardInfo describes one shard file of a dataset.
type ShardInfo struct {
	Split      string `json:"split"`
	File       string `json:"file"`        // e.g. "train-00000.zst", relative to the dataset directory
	Records    int    `json:"records"`     // number of records in the shard
	SHA256     string `json:"sha256"`      // hex SHA-256 of the compressed file
	FirstIndex int    `json:"first_index"` // index within the split of the shard's first record
}

// Provenance says where a dataset came from.
type Provenance struct {
	Format string   `json:"format"` // the source format ("folder", "idx", …)
	Inputs []string `json:"inputs"` // the input paths as given
	Notes  string   `json:"notes"`  // free-form
}

// CorruptError reports that a dataset on disk is malformed or has changed
// since it was written: a bad or unsupported manifest, a missing shard file,
// or a shard that fails its SHA-256, does not decompress, or holds bad
// records. Test for it with errors.As.
type CorruptError struct {
	Dir    string // the dataset directory
	Shard  string // the shard file name, or "" when the problem is in the manifest
	Record int    // the record's index within the shard, or -1
	Msg    string // what is wrong
	Err    error  // underlying cause, such as a zstd error or fs.ErrNotExist; may be nil
}

func (e *CorruptError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "data: dataset %q: ", e.Dir)
	if e.Shard != "" {
		fmt.Fprintf(&b, "shard %q: ", e.Shard)
	}
	if e.Record >= 0 {
		fmt.Fprintf(&b, "record %d: ", e.Record)
	}
	b.WriteString(e.Msg)
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying cause, if any.
func (e *CorruptError) Unwrap() error { return e.Err }

// splitName is what a split may be called: it becomes part of file names.
var splitName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)

func shardFile(split string, k int) string { return fmt.Sprintf("%s-%05d.zst", split, k) }

// Writer writes a new dataset. It is used from one goroutine. Records go
// into a temporary directory next to the destination, which Close renames
// into place; until then nothing exists at the destination.
type Writer struct {
	dir, tmp string
	geom     shardGeom
	man      Manifest
	open     map[string]*shardWriter // the current shard of each split
	attached []attachment            // files Close writes beside the manifest
	err      error                   // sticky: a failed write breaks the Writer
	done     bool                    // closed or aborted
}

// attachment is a file that Close writes into the dataset directory.
type attachment struct {
	name string
	fill func(id string) ([]byte, error)
}

// Create starts a dataset that will be written to dir, which must not
// exist: Create never overwrites a user's output. p is the preprocessing
// that made the records (its zero fields mean the defaults; it gives the
// image size and channels every record must have); classes are the label
// names, nil for an unlabelled dataset. Parent directories are created.
// The records are written into a temporary directory named
// dir+".partial-…" that Close renames to dir and Abort removes.
func Create(dir string, p Preprocess, classes []string, src Provenance) (*Writer, error) {
	p = p.WithDefaults()
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("data: dataset %q: %w", dir, err)
	}
	seen := make(map[string]bool, len(classes))
	for i, c := range classes {
		if c == "" || seen[c] {
			return nil, fmt.Errorf("data: dataset %q: class %d: name %q is empty or repeated", dir, i, c)
		}
		seen[c] = true
	}
	if err := refuseExisting(dir); err != nil {
		return nil, err
	}
	parent, base := filepath.Split(filepath.Clean(dir))
	if parent == "" {
		parent = "."
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("data: dataset %q: %w", dir, err)
	}
	tmp, err := os.MkdirTemp(parent, base+".partial-")
	if err != nil {
		return nil, fmt.Errorf("data: dataset %q: %w", dir, err)
	}
	// MkdirTemp makes the directory private; the dataset is for sharing.
	if err := os.Chmod(tmp, 0o755); err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("data: dataset %q: %w", dir, err)
	}
	src.Inputs = slices.Clone(src.Inputs)
	return &Writer{
		dir:  dir,
		tmp:  tmp,
		geom: shardGeom{size: p.Size, channels: p.Channels, classes: len(classes)},
		man: Manifest{
			FormatVersion: DatasetVersion,
			Size:          p.Size,
			Channels:      p.Channels,
			Classes:       cloneClasses(classes),
			Splits:        map[string]int{},
			Preprocessing: p,
			Source:        src,
		},
		open: map[string]*shardWriter{},
	}, nil
}

// cloneClasses copies classes, making an empty list nil so that nil and
// empty give the same manifest.
func cloneClasses(classes []string) []string {
	if len(classes) == 0 {
		return nil
	}
	return slices.Clone(classes)
}

// refuseExisting returns an error, matching fs.ErrExist, when dir exists.
func refuseExisting(dir string) error {
	_, err := os.Lstat(dir)
	switch {
	case err == nil:
		return fmt.Errorf("data: dataset %q already exists: choose another output directory or remove it: %w", dir, fs.ErrExist)
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("data: dataset %q: %w", dir, err)
	}
	return nil
}

// SetCounts records, for the manifest, how many records ingest found to be
// duplicates and how many inputs it skipped.
func (w *Writer) SetCounts(duplicates, skipped int) {
	w.man.Duplicates, w.man.Skipped = duplicates, skipped
}

// Attach arranges for Close to write a file called name into the dataset
// directory, holding what fill returns for the dataset's ID. Close writes
// it after manifest.json into the temporary directory, synced, before the
// directory is renamed into place: the file appears with the dataset,
// complete, or not at all, and an error from fill fails Close. The file
// is not in the manifest and does not change the dataset ID; Open ignores
// it. Attach panics if name is not a plain file name, starts with a dot,
// ends in ".zst", is ManifestFile or was attached before.
func (w *Writer) Attach(name string, fill func(id string) ([]byte, error)) {
	if name == "" || name != filepath.Base(name) || strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".zst") ||
		name == ManifestFile || slices.ContainsFunc(w.attached, func(a attachment) bool { return a.name == name }) {
		panic(fmt.Sprintf("data: Writer.Attach: bad or repeated file name %q", name))
	}
	w.attached = append(w.attached, attachment{name, fill})
}

// Add appends r to split (Train, Val, Test, Unlabeled, or another lower-case
// name of letters, digits and underscores; "" means Train). It returns an
// error, and writes nothing, when r does not fit the dataset: len(r.Pixels)
// must be Size×Size×Channels, r.Label in [-1, len(classes)), and r.Origin at
// most MaxOrigin bytes. After a write fails, every later call fails.
func (w *Writer) Add(split string, r Record) error {
	if w.done {
		return fmt.Errorf("data: dataset %q: Add after Close or Abort", w.dir)
	}
	if w.err != nil {
		return w.err
	}
	if split == "" {
		split = Train
	}
	if !splitName.MatchString(split) {
		return fmt.Errorf("data: dataset %q: bad split name %q: want lower-case letters, digits and underscores", w.dir, split)
	}
	if want := w.geom.pixels(); len(r.Pixels) != want {
		return fmt.Errorf("data: dataset %q: record %q: %d pixel bytes, want %d (%d×%d×%d)",
			w.dir, r.Origin, len(r.Pixels), want, w.geom.size, w.geom.size, w.geom.channels)
	}
	if r.Label < -1 || r.Label >= w.geom.classes {
		return fmt.Errorf("data: dataset %q: record %q: label %d out of range [-1, %d)", w.dir, r.Origin, r.Label, w.geom.classes)
	}
	if len(r.Origin) > MaxOrigin {
		return fmt.Errorf("data: dataset %q: record origin of %d bytes: at most %d allowed", w.dir, len(r.Origin), MaxOrigin)
	}
	s := w.open[split]
	n := payloadHead + len(r.Origin) + len(r.Pixels)
	if s != nil && (s.records >= shardRecords || s.bytes+n > shardBytes) {
		if err := w.finish(split); err != nil {
			return w.fail(err)
		}
		s = nil
	}
	if s == nil {
		k := 0
		for _, si := range w.man.Shards {
			if si.Split == split {
				k++
			}
		}
		var err error
		if s, err = newShardWriter(filepath.Join(w.tmp, shardFile(split, k))); err != nil {
			return w.fail(err)
		}
		w.open[split] = s
	}
	if err := s.add(r); err != nil {
		return w.fail(err)
	}
	w.man.Splits[split]++
	return nil
}

func (w *Writer) fail(err error) error {
	w.err = fmt.Errorf("data: dataset %q: writing: %w", w.dir, err)
	return w.err
}

// finish closes the open shard of split and adds it to the manifest.
func (w *Writer) finish(split string) error {
	s := w.open[split]
	delete(w.open, split)
	sum, err := s.close()
	if err != nil {
		return err
	}
	k, first := 0, 0
	for _, si := range w.man.Shards {
		if si.Split == split {
			k++
			first += si.Records
		}
	}
	w.man.Shards = append(w.man.Shards, ShardInfo{Split: split, File: shardFile(split, k), Records: s.records, SHA256: sum, FirstIndex: first})
	return nil
}

// Close finishes every shard, writes manifest.json and the attached files
// (see Attach), syncs every file and the directory, and renames the
// temporary directory to the destination.
// It returns the manifest and the dataset ID (the hex SHA-256 of
// manifest.json). On error nothing is left at the destination and the
// temporary directory is removed.
func (w *Writer) Close() (*Manifest, string, error) {
	if w.done {
		return nil, "", fmt.Errorf("data: dataset %q: Close after Close or Abort", w.dir)
	}
	m, id, err := w.close()
	if err != nil {
		w.Abort()
		return nil, "", err
	}
	w.done = true
	return m, id, nil
}

func (w *Writer) close() (*Manifest, string, error) {
	if w.err != nil {
		return nil, "", w.err
	}
	splits := make([]string, 0, len(w.open))
	for s := range w.open {
		splits = append(splits, s)
	}
	sort.Strings(splits)
	for _, s := range splits {
		if err := w.finish(s); err != nil {
			return nil, "", w.fail(err)
		}
	}
	sort.SliceStable(w.man.Shards, func(i, j int) bool { return w.man.Shards[i].Split < w.man.Shards[j].Split })
	b, err := json.MarshalIndent(&w.man, "", "  ")
	if err != nil {
		return nil, "", w.fail(err)
	}
	b = append(b, '\n')
	if err := fsutil.WriteSynced(filepath.Join(w.tmp, ManifestFile), fsutil.CreateExcl, func(f io.Writer) error {
		_, err := f.Write(b)
		return err
	}); err != nil {
		return nil, "", w.fail(err)
	}
	sum := sha256.Sum256(b)
	id := hex.EncodeToString(sum[:])
	for _, a := range w.attached {
		content, err := a.fill(id)
		if err != nil {
			return nil, "", fmt.Errorf("data: dataset %q: %s: %w", w.dir, a.name, err)
		}
		if err := fsutil.WriteSynced(filepath.Join(w.tmp, a.name), fsutil.CreateExcl, func(f io.Writer) error {
			_, err := f.Write(content)
			return err
		}); err != nil {
			return nil, "", w.fail(err)
		}
	}
	if err := fsutil.SyncDir(w.tmp); err != nil {
		return nil, "", w.fail(err)
	}
	if err := refuseExisting(w.dir); err != nil {
		return nil, "", err
	}
	if err := os.Rename(w.tmp, w.dir); err != nil {
		return nil, "", w.fail(err)
	}
	if err := fsutil.SyncDir(filepath.Dir(filepath.Clean(w.dir))); err != nil {
		return nil, "", w.fail(err)
	}
	m := w.man
	return &m, id, nil
}

// Abort discards the dataset: it removes the temporary directory. It is
// safe to call more than once, and after Close, when it does nothing.
func (w *Writer) Abort() {
	if w.done {
		return
	}
	w.done = true
	for _, s := range w.open {
		s.discard()
	}
	w.open = nil
	os.RemoveAll(w.tmp)
}

// Dataset reads a dataset written by Writer. Its methods are safe for
// concurrent use.
type Dataset struct {
	dir    string
	id     string
	man    Manifest
	geom   shardGeom
	shards map[string][]ShardInfo // by split, in order

	mu    sync.Mutex
	cache []cachedShard // most recently used first
}

type cachedShard struct {
	file string
	recs []Record
}

// shardCache is how many decoded shards Read keeps.
const shardCache = 2

// Open reads and checks dir's manifest.json and that every shard file it
// names exists. It does not read the shards: Read, Load, Stream and Verify
// check each shard they read. A malformed manifest, an unsupported
// format_version or missing shard files give a *CorruptError (missing
// files also match fs.ErrNotExist); a missing dir or manifest gives an
// error matching fs.ErrNotExist.
func Open(dir string) (*Dataset, error) {
	f, err := os.Open(filepath.Join(dir, ManifestFile))
	if err != nil {
		return nil, fmt.Errorf("data: dataset %q: %w", dir, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxManifestBytes+1))
	if err != nil {
		return nil, fmt.Errorf("data: dataset %q: %w", dir, err)
	}
	bad := func(format string, args ...any) error {
		return &CorruptError{Dir: dir, Record: -1, Msg: ManifestFile + ": " + fmt.Sprintf(format, args...)}
	}
	if len(b) > maxManifestBytes {
		return nil, bad("larger than %d bytes", maxManifestBytes)
	}
	var v struct {
		FormatVersion *int `json:"format_version"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, &CorruptError{Dir: dir, Record: -1, Msg: ManifestFile + ": bad JSON", Err: err}
	}
	if v.FormatVersion == nil {
		return nil, bad("no format_version: this build reads version %d", DatasetVersion)
	}
	if *v.FormatVersion != DatasetVersion {
		return nil, bad("format_version %d is not supported: this build reads version %d", *v.FormatVersion, DatasetVersion)
	}
	d := &Dataset{dir: dir, shards: map[string][]ShardInfo{}}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d.man); err != nil {
		return nil, &CorruptError{Dir: dir, Record: -1, Msg: ManifestFile + ": bad JSON", Err: err}
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, bad("data after the JSON object")
	}
	if err := d.check(); err != nil {
		return nil, bad("%v", err)
	}
	var missing []string
	for _, si := range d.man.Shards {
		if _, err := os.Stat(filepath.Join(dir, si.File)); errors.Is(err, fs.ErrNotExist) {
			missing = append(missing, si.File)
		} else if err != nil {
			return nil, fmt.Errorf("data: dataset %q: %w", dir, err)
		}
	}
	if len(missing) > 0 {
		return nil, &CorruptError{Dir: dir, Record: -1, Err: fs.ErrNotExist,
			Msg: fmt.Sprintf("missing %d of %d shard files: %s", len(missing), len(d.man.Shards), listNames(missing, 10))}
	}
	sum := sha256.Sum256(b)
	d.id = hex.EncodeToString(sum[:])
	return d, nil
}

// check checks the manifest's internal consistency and fills d.geom and
// d.shards.
func (d *Dataset) check() error {
	m := &d.man
	if m.Size < 1 || m.Size > 4096 {
		return fmt.Errorf("size %d: want 1 to 4096", m.Size)
	}
	if m.Channels != 1 && m.Channels != 3 {
		return fmt.Errorf("channels %d: want 1 or 3", m.Channels)
	}
	if m.Preprocessing.Size != m.Size || m.Preprocessing.Channels != m.Channels {
		return fmt.Errorf("preprocessing size %d and channels %d disagree with size %d and channels %d",
			m.Preprocessing.Size, m.Preprocessing.Channels, m.Size, m.Channels)
	}
	if m.Duplicates < 0 || m.Skipped < 0 {
		return fmt.Errorf("negative duplicates %d or skipped %d", m.Duplicates, m.Skipped)
	}
	d.geom = shardGeom{size: m.Size, channels: m.Channels, classes: len(m.Classes)}
	pix := d.geom.pixels()
	for i, si := range m.Shards {
		s := d.shards[si.Split]
		first := 0
		if len(s) > 0 {
			first = s[len(s)-1].FirstIndex + s[len(s)-1].Records
		}
		switch {
		case !splitName.MatchString(si.Split):
			return fmt.Errorf("shard %d: bad split name %q", i, si.Split)
		case si.File != shardFile(si.Split, len(s)):
			return fmt.Errorf("shard %d: file %q: want %q", i, si.File, shardFile(si.Split, len(s)))
		case si.Records < 1 || si.Records > maxShardRecs || si.Records*pix > maxShardPixels:
			return fmt.Errorf("shard %q: %d records: want 1 to %d, and at most %d pixel bytes",
				si.File, si.Records, min(maxShardRecs, maxShardPixels/pix), maxShardPixels)
		case si.FirstIndex != first:
			return fmt.Errorf("shard %q: first_index %d: want %d", si.File, si.FirstIndex, first)
		case len(si.SHA256) != 64 || strings.ToLower(si.SHA256) != si.SHA256:
			return fmt.Errorf("shard %q: sha256 %q is not 64 lower-case hex digits", si.File, si.SHA256)
		}
		if _, err := hex.DecodeString(si.SHA256); err != nil {
			return fmt.Errorf("shard %q: sha256 %q is not 64 lower-case hex digits", si.File, si.SHA256)
		}
		d.shards[si.Split] = append(s, si)
	}
	for split, n := range m.Splits {
		s := d.shards[split]
		got := 0
		if len(s) > 0 {
			got = s[len(s)-1].FirstIndex + s[len(s)-1].Records
		}
		if n != got {
			return fmt.Errorf("splits: %q has %d records, but its shards hold %d", split, n, got)
		}
	}
	for split := range d.shards {
		if _, ok := m.Splits[split]; !ok {
			return fmt.Errorf("splits: %q has shards but no count", split)
		}
	}
	return nil
}

// ID returns the dataset ID: the hex SHA-256 of manifest.json.
func (d *Dataset) ID() string { return d.id }

// Dir returns the dataset's directory.
func (d *Dataset) Dir() string { return d.dir }

// Manifest returns a copy of the dataset's manifest.
func (d *Dataset) Manifest() *Manifest {
	m := d.man
	m.Classes = slices.Clone(m.Classes)
	m.Shards = slices.Clone(m.Shards)
	m.Source.Inputs = slices.Clone(m.Source.Inputs)
	m.Splits = make(map[string]int, len(d.man.Splits))
	for k, v := range d.man.Splits {
		m.Splits[k] = v
	}
	return &m
}

// Len returns the number of records in split, 0 for a split the dataset
// does not have.
func (d *Dataset) Len(split string) int { return d.man.Splits[split] }

// Splits returns the names of the dataset's non-empty splits, sorted.
func (d *Dataset) Splits() []string {
	var s []string
	for k, n := range d.man.Splits {
		if n > 0 {
			s = append(s, k)
		}
	}
	sort.Strings(s)
	return s
}

// loadShard reads, checks and decodes one shard: the SHA-256 of the file
// against the manifest, then the CRC of every record.
func (d *Dataset) loadShard(si ShardInfo) ([]Record, error) {
	path := filepath.Join(d.dir, si.File)
	f, err := os.Open(path)
	if err != nil {
		return nil, &CorruptError{Dir: d.dir, Shard: si.File, Record: -1, Msg: "cannot open", Err: err}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("data: dataset %q: shard %q: %w", d.dir, si.File, err)
	}
	if fi.Size() > maxShardFile {
		return nil, &CorruptError{Dir: d.dir, Shard: si.File, Record: -1,
			Msg: fmt.Sprintf("file of %d bytes: shard files are at most %d", fi.Size(), maxShardFile)}
	}
	b := make([]byte, 0, fi.Size()+1)
	if b, err = readAllInto(f, b); err != nil {
		return nil, fmt.Errorf("data: dataset %q: shard %q: %w", d.dir, si.File, err)
	}
	if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != si.SHA256 {
		ce := &CorruptError{Dir: d.dir, Shard: si.File, Record: -1,
			Msg: fmt.Sprintf("SHA-256 mismatch: shard file changed since ingest (manifest %.12s…, file %.12s…)", si.SHA256, hex.EncodeToString(sum[:]))}
		// Say which record the change hit, where the records tell: the
		// first one whose bytes no longer decode or match their CRC.
		if _, err := decodeShard(b, d.geom, si.Records); err != nil {
			var rec *CorruptError
			if errors.As(err, &rec) && rec.Record >= 0 {
				ce.Record = rec.Record
				ce.Msg += "; first damaged record: " + rec.Msg
			}
		}
		return nil, ce
	}
	recs, err := decodeShard(b, d.geom, si.Records)
	if err != nil {
		var ce *CorruptError
		if errors.As(err, &ce) {
			ce.Dir, ce.Shard = d.dir, si.File
		}
		return nil, err
	}
	return recs, nil
}

// readAllInto reads r to its end, appending to b, never reading more than
// maxShardFile+1 bytes.
func readAllInto(r io.Reader, b []byte) ([]byte, error) {
	buf := bytes.NewBuffer(b)
	_, err := buf.ReadFrom(io.LimitReader(r, maxShardFile+1))
	return buf.Bytes(), err
}

// shardOf returns the shard of split holding record i.
func (d *Dataset) shardOf(split string, i int) (ShardInfo, error) {
	n := d.man.Splits[split]
	if i < 0 || i >= n {
		return ShardInfo{}, fmt.Errorf("data: dataset %q: split %q: index %d out of range [0, %d)", d.dir, split, i, n)
	}
	s := d.shards[split]
	k := sort.Search(len(s), func(k int) bool { return s[k].FirstIndex+s[k].Records > i })
	return s[k], nil
}

// Read returns record i of split, reading its shard (checked as in Verify)
// unless it is among the few most recently read. The record's Pixels are
// the caller's.
func (d *Dataset) Read(split string, i int) (Record, error) {
	si, err := d.shardOf(split, i)
	if err != nil {
		return Record{}, err
	}
	d.mu.Lock()
	var recs []Record
	for k, c := range d.cache {
		if c.file == si.File {
			recs = c.recs
			copy(d.cache[1:k+1], d.cache[:k])
			d.cache[0] = c
			break
		}
	}
	d.mu.Unlock()
	if recs == nil {
		if recs, err = d.loadShard(si); err != nil {
			return Record{}, err
		}
		d.mu.Lock()
		if !slices.ContainsFunc(d.cache, func(c cachedShard) bool { return c.file == si.File }) {
			d.cache = slices.Insert(d.cache, 0, cachedShard{si.File, recs})
			if len(d.cache) > shardCache {
				d.cache = d.cache[:shardCache]
			}
		}
		d.mu.Unlock()
	}
	r := recs[i-si.FirstIndex]
	r.Pixels = slices.Clone(r.Pixels)
	return r, nil
}

// Load reads every record of split into memory, in order, checking each
// shard as in Verify.
func (d *Dataset) Load(split string) ([]Record, error) {
	out := make([]Record, 0, d.man.Splits[split])
	for _, si := range d.shards[split] {
		recs, err := d.loadShard(si)
		if err != nil {
			return nil, err
		}
		out = append(out, recs...)
	}
	return out, nil
}

// Verify reads every shard of every split and checks it: the SHA-256 of the
// file against the manifest, the zstd stream, the CRC-32C and size of every
// record, and the record count. It returns every problem found, joined
// (each a *CorruptError or an I/O error), or ctx's error when ctx is done.
func (d *Dataset) Verify(ctx context.Context) error {
	var errs []error
	for _, si := range d.man.Shards {
		if err := ctx.Err(); err != nil {
			return err
		}
		if _, err := d.loadShard(si); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Stream calls fn for every record of split exactly once, through a
// Reader, so a split larger than memory can be read. With shuffleBuffer
// > 1 the order is Order{Shuffle: true, Seed: seed, Buffer:
// shuffleBuffer} (shards in a random order, DefaultInterleave at a time,
// through a shuffle buffer of that many records); with shuffleBuffer ≤ 1
// the records come in file order, one shard at a time. fn may keep the
// records it is given. Stream stops at the first error from reading a
// shard (a *CorruptError), from fn (returned as is), or from ctx.
func (d *Dataset) Stream(ctx context.Context, split string, shuffleBuffer int, seed uint64, fn func(Record) error) error {
	var o Order
	if shuffleBuffer > 1 {
		o = Order{Shuffle: true, Seed: seed, Buffer: shuffleBuffer}
	}
	r, err := d.NewReader(ctx, split, o, 0)
	if err != nil {
		return err
	}
	defer r.Close()
	for {
		rec, _, err := r.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(rec); err != nil {
			return err
		}
	}
}
