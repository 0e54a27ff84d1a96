package checkpoint

import (
	"bufio"
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/klauspost/compress/zstd"

	"github.com/patchwise-ml/patchwise/internal/fsutil"
	"github.com/patchwise-ml/patchwise/nn"
)

const (
	// Version is the checkpoint format version that
	// Save writes and the only one Load reads.
	Version = 1

	// ManifestFile and TensorsFile are the names of a
	// checkpoint's two files.
	ManifestFile = "manifest.json"
	TensorsFile  = "tensors.zst"
)

// Prefixes of tensor names in a checkpoint, by group.
const (
	ModelPrefix  = "model/"
	BufferPrefix = "buffer/"
	OptimPrefix  = "optim/"
)

// maxManifest is the largest manifest.json Load reads.
const maxManifest = 64 << 20

// DirName returns the directory name of the checkpoint of step:
// "ckpt-step-00012000" for 12000.
func DirName(step int) string { return fmt.Sprintf("ckpt-step-%08d", step) }

// State is what a checkpoint holds. Save reads every
// field; Load copies the tensors into the values of Params, Buffers
// and Optim, which the caller has built for the model (matching by name), and
// sets the other fields.
type State struct {
	Step, Epoch int
	Config      json.RawMessage    // the run's config; any JSON value (nil is saved as null)
	DatasetID   string             // the ID of the dataset the run trains on
	Pretext     string             // the model's name, such as "relpos"
	RNG         map[string][]byte  // named random-source states
	Metrics     map[string]float64 // such as "val_loss"; finite values only
	Params      []*nn.Param        // the model's parameters (the same *Param may appear twice: tied weights)
	Buffers     []*nn.Param        // the model's buffers
	Optim       []*nn.Param        // the optimiser's state (nn.Optimizer.State)
}

// Manifest is the content of a checkpoint's manifest.json.
type Manifest struct {
	FormatVersion int                `json:"format_version"`
	Step          int                `json:"step"`
	Epoch         int                `json:"epoch"`
	Config        json.RawMessage    `json:"config"`
	DatasetID     string             `json:"dataset_id"`
	Pretext       string             `json:"pretext"`
	RNG           map[string][]byte  `json:"rng"`
	Metrics       map[string]float64 `json:"metrics"`
	Tensors       []TensorInfo       `json:"tensors"`
	TensorsBytes  int64              `json:"tensors_bytes"`  // size of tensors.zst
	TensorsSHA256 string             `json:"tensors_sha256"` // hex SHA-256 of tensors.zst
}

// TensorInfo describes one tensor of a checkpoint.
type TensorInfo struct {
	Name   string `json:"name"`   // prefixed: "model/…", "buffer/…" or "optim/…"
	Shape  []int  `json:"shape"`  // outermost first; [] for a scalar
	SHA256 string `json:"sha256"` // hex SHA-256 of the values as little-endian float32 bytes
}

// Kinds of Error.
const (
	KindTruncated    = "truncated"    // a file is shorter than the manifest says, or manifest.json ends early
	KindCorrupt      = "corrupt"      // a checksum mismatch or malformed contents
	KindVersion      = "version"      // a format_version this build does not read
	KindArchitecture = "architecture" // the tensors do not fit the model given to Load
	KindMissing      = "missing"      // the directory or one of its files does not exist
)

// Sentinels that a *Error matches with errors.Is, one per kind.
var (
	ErrTruncated    = errors.New("checkpoint truncated")
	ErrCorrupt      = errors.New("checkpoint corrupt")
	ErrVersion      = errors.New("checkpoint format version not supported")
	ErrArchitecture = errors.New("checkpoint made for another architecture")
	ErrMissing      = errors.New("checkpoint missing")
)

// ErrNone is returned, wrapped, by Latest when a directory
// holds no checkpoint.
var ErrNone = errors.New("no checkpoint")

var kindSentinels = map[string]error{
	KindTruncated:    ErrTruncated,
	KindCorrupt:      ErrCorrupt,
	KindVersion:      ErrVersion,
	KindArchitecture: ErrArchitecture,
	KindMissing:      ErrMissing,
}

// Error reports a checkpoint that cannot be loaded, and why: Kind
// is one of KindTruncated, KindCorrupt, KindVersion, KindArchitecture and
// KindMissing. Test for a kind with errors.Is and the matching sentinel
// (ErrCorrupt, …), or with errors.As and Kind. Missing files also
// match fs.ErrNotExist. For KindArchitecture, Err lists every difference
// (its Unwrap() []error gives them one by one).
type Error struct {
	Path string // the checkpoint directory
	Kind string // KindTruncated, KindCorrupt, KindVersion, KindArchitecture or KindMissing
	Msg  string // what is wrong
	Err  error  // the underlying cause, if any
}

func (e *Error) Error() string {
	s := fmt.Sprintf("checkpoint %q: %s: %s", e.Path, e.Kind, e.Msg)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the underlying cause, if any.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is the sentinel of e's kind.
func (e *Error) Is(target error) bool {
	s, ok := kindSentinels[e.Kind]
	return ok && s == target
}

// diffList is a list of differences, printed on one line.
type diffList []error

func (d diffList) Error() string {
	parts := make([]string, len(d))
	for i, e := range d {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "; ")
}

func (d diffList) Unwrap() []error { return d }

// createFunc creates a new file for writing; it must fail if path exists.
// Tests pass one that fails on purpose.
type createFunc func(path string) (fsutil.File, error)

// Save writes s as the checkpoint of step s.Step into the
// directory dir/DirName(s.Step), creating dir if needed, and returns
// its path. It refuses, with an error matching fs.ErrExist, to replace a
// checkpoint of the same step.
//
// The checkpoint is written into a temporary directory in dir whose files and
// the directory itself are synced before it is renamed into place, and dir
// is synced after. If anything fails (a full disk, say), the temporary
// directory is removed and no other checkpoint is touched.
//
// The tensors are read, not copied: do not change them until Save
// returns. It returns an error if s.Step or s.Epoch is negative, a metric is
// not finite, s.Config is not valid JSON, a *Param is nil, or two distinct
// parameters of one group share a name.
func Save(dir string, s State) (string, error) {
	return save(dir, s, fsutil.CreateExcl)
}

func save(dir string, s State, create createFunc) (string, error) {
	name := DirName(s.Step)
	final := filepath.Join(dir, name)
	fail := func(err error) (string, error) {
		return "", fmt.Errorf("checkpoint: save %q: %w", final, err)
	}
	if s.Step < 0 || s.Epoch < 0 {
		return fail(fmt.Errorf("negative step %d or epoch %d", s.Step, s.Epoch))
	}
	for k, v := range s.Metrics {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fail(fmt.Errorf("metric %q is %v: JSON cannot hold it", k, v))
		}
	}
	if s.Config != nil && !json.Valid(s.Config) {
		return fail(errors.New("config is not valid JSON"))
	}
	ts, err := stateTensors(s)
	if err != nil {
		return fail(err)
	}
	if err := refuseExisting(final); err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fail(err)
	}
	tmp, err := os.MkdirTemp(dir, "."+name+".partial-")
	if err != nil {
		return fail(err)
	}
	if err := writeDir(tmp, final, s, ts, create); err != nil {
		os.RemoveAll(tmp)
		if errors.Is(err, fs.ErrExist) {
			return "", err
		}
		return fail(err)
	}
	if err := fsutil.SyncDir(dir); err != nil {
		// The checkpoint is in place; only its durability is in doubt.
		return fail(err)
	}
	return final, nil
}

// refuseExisting returns an error matching fs.ErrExist when path
// exists.
func refuseExisting(path string) error {
	_, err := os.Lstat(path)
	switch {
	case err == nil:
		return fmt.Errorf("checkpoint: save %q: a checkpoint of this step already exists: %w", path, fs.ErrExist)
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("checkpoint: save %q: %w", path, err)
	}
	return nil
}

// stateTensors returns the prefixed tensors of s, each *Param once.
func stateTensors(s State) ([]nn.NamedTensor, error) {
	ps, err := standIns(&s)
	if err != nil {
		return nil, err
	}
	return nn.StateOf(ps), nil
}

// writeDir writes the checkpoint's files into tmp, syncs them and
// tmp, and renames tmp to final.
func writeDir(tmp, final string, s State, ts []nn.NamedTensor, create createFunc) error {
	// MkdirTemp makes the directory private; checkpoints are for sharing.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	m := Manifest{
		FormatVersion: Version,
		Step:          s.Step,
		Epoch:         s.Epoch,
		Config:        s.Config,
		DatasetID:     s.DatasetID,
		Pretext:       s.Pretext,
		RNG:           s.RNG,
		Metrics:       s.Metrics,
		Tensors:       make([]TensorInfo, len(ts)),
	}
	if m.Config == nil {
		m.Config = json.RawMessage("null")
	}
	for i, nt := range ts {
		m.Tensors[i] = TensorInfo{Name: nt.Name, Shape: slices.Clone(nt.T.Shape), SHA256: tensorSHA256(nt.T.Data)}
		if m.Tensors[i].Shape == nil {
			m.Tensors[i].Shape = []int{}
		}
	}
	n, sum, err := writeTensorsFile(filepath.Join(tmp, TensorsFile), ts, create)
	if err != nil {
		return err
	}
	m.TensorsBytes, m.TensorsSHA256 = n, sum
	b, err := json.MarshalIndent(&m, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if err := fsutil.WriteSynced(filepath.Join(tmp, ManifestFile), create, func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	}); err != nil {
		return err
	}
	if err := fsutil.SyncDir(tmp); err != nil {
		return err
	}
	if err := refuseExisting(final); err != nil {
		return err
	}
	return os.Rename(tmp, final)
}

// writeTensorsFile writes the zstd-compressed tensor container of ts to
// path and returns the file's size and hex SHA-256.
func writeTensorsFile(path string, ts []nn.NamedTensor, create createFunc) (int64, string, error) {
	h := sha256.New()
	cw := &countWriter{}
	err := fsutil.WriteSynced(path, create, func(w io.Writer) error {
		bw := bufio.NewWriterSize(io.MultiWriter(w, h, cw), 256<<10)
		zw, err := zstd.NewWriter(bw, zstd.WithEncoderConcurrency(1),
			zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithWindowSize(8<<20))
		if err != nil {
			return err
		}
		if err := nn.WriteTensors(zw, ts); err != nil {
			zw.Close()
			return err
		}
		if err := zw.Close(); err != nil {
			return err
		}
		return bw.Flush()
	})
	if err != nil {
		return 0, "", err
	}
	return cw.n, hex.EncodeToString(h.Sum(nil)), nil
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}

// tensorSHA256 returns the hex SHA-256 of data as little-endian float32
// bytes.
func tensorSHA256(data []float32) string {
	h := sha256.New()
	HashFloats(h, data)
	return hex.EncodeToString(h.Sum(nil))
}

// HashFloats writes data to h as little-endian float32 bytes, the bytes
// whose SHA-256 a checkpoint's manifest lists for each tensor.
func HashFloats(h hash.Hash, data []float32) {
	var buf [16 << 10]byte
	for len(data) > 0 {
		k := min(len(data), len(buf)/4)
		for i, v := range data[:k] {
			binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
		}
		h.Write(buf[:4*k])
		data = data[k:]
	}
}

// ReadManifest reads and checks the manifest.json of the
// checkpoint at path, without reading the tensors: use it to learn a
// checkpoint's config and pretext before building the model to load it
// into. Errors are as for Load.
func ReadManifest(path string) (*Manifest, error) {
	f, err := os.Open(filepath.Join(path, ManifestFile))
	if err != nil {
		return nil, openError(path, ManifestFile, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxManifest+1))
	if err != nil {
		return nil, fmt.Errorf("checkpoint %q: %s: %w", path, ManifestFile, err)
	}
	m, err := parseManifest(b)
	if err != nil {
		var ce *Error
		if errors.As(err, &ce) {
			ce.Path = path
		}
		return nil, err
	}
	return m, nil
}

// openError describes a failure to open a checkpoint's file: a
// *Error of kind "missing" if it does not exist.
func openError(path, file string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		msg := file + " does not exist"
		if _, serr := os.Stat(path); errors.Is(serr, fs.ErrNotExist) {
			msg = "no such checkpoint directory"
		}
		return &Error{Path: path, Kind: KindMissing, Msg: msg, Err: fs.ErrNotExist}
	}
	return fmt.Errorf("checkpoint %q: %s: %w", path, file, err)
}

// parseManifest decodes and checks a manifest. Errors are
// *Error with an empty Path.
func parseManifest(b []byte) (*Manifest, error) {
	bad := func(kind, format string, args ...any) error {
		return &Error{Kind: kind, Msg: ManifestFile + ": " + fmt.Sprintf(format, args...)}
	}
	jsonErr := func(err error) error {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return bad(KindTruncated, "ends early (%d bytes)", len(b))
		}
		return &Error{Kind: KindCorrupt, Msg: ManifestFile + ": bad JSON", Err: err}
	}
	if len(b) > maxManifest {
		return nil, bad(KindCorrupt, "larger than %d bytes", maxManifest)
	}
	// The version first, leniently: another version may have other fields.
	var v struct {
		FormatVersion *json.Number `json:"format_version"`
	}
	if err := json.NewDecoder(bytes.NewReader(b)).Decode(&v); err != nil {
		return nil, jsonErr(err)
	}
	if v.FormatVersion == nil {
		return nil, bad(KindCorrupt, "no format_version (this build reads version %d)", Version)
	}
	if ver, err := v.FormatVersion.Int64(); err != nil || ver != Version {
		return nil, bad(KindVersion, "format_version %s is not supported: this build reads version %d only", v.FormatVersion, Version)
	}
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, jsonErr(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, bad(KindCorrupt, "data after the JSON object")
	}
	if err := checkManifest(&m); err != nil {
		return nil, bad(KindCorrupt, "%v", err)
	}
	if len(m.Config) > 0 {
		var c bytes.Buffer
		if err := json.Compact(&c, m.Config); err == nil {
			m.Config = c.Bytes()
		}
		if string(m.Config) == "null" {
			m.Config = nil // as saved
		}
	}
	return &m, nil
}

// checkManifest checks what the decoder cannot: bounds, names and hashes.
func checkManifest(m *Manifest) error {
	if m.Step < 0 || m.Epoch < 0 {
		return fmt.Errorf("negative step %d or epoch %d", m.Step, m.Epoch)
	}
	if !isHexSHA256(m.TensorsSHA256) {
		return fmt.Errorf("tensors_sha256 %q is not a hex SHA-256", m.TensorsSHA256)
	}
	raw, err := containerSize(m.Tensors)
	if err != nil {
		return err
	}
	// zstd never expands data by more than a little framing.
	if limit := raw + raw/64 + 1<<16; m.TensorsBytes < 1 || uint64(m.TensorsBytes) > limit {
		return fmt.Errorf("tensors_bytes %d is implausible for %d bytes of tensors", m.TensorsBytes, raw)
	}
	return nil
}

// containerSize checks the manifest's tensor list and returns the size in
// bytes of the nn.WriteTensors container that holds those tensors.
func containerSize(ts []TensorInfo) (uint64, error) {
	if uint64(len(ts)) > math.MaxUint32 {
		return 0, fmt.Errorf("%d tensors", len(ts))
	}
	size := uint64(16 + 4) // header and checksum
	var total uint64
	seen := make(map[string]bool, len(ts))
	for i, t := range ts {
		switch {
		case t.Name == "" || len(t.Name) > nn.MaxTensorNameLen || !utf8.ValidString(t.Name):
			return 0, fmt.Errorf("tensor %d: bad name %q", i, t.Name)
		case seen[t.Name]:
			return 0, fmt.Errorf("tensor %d: duplicate name %q", i, t.Name)
		case !strings.HasPrefix(t.Name, ModelPrefix) && !strings.HasPrefix(t.Name, BufferPrefix) && !strings.HasPrefix(t.Name, OptimPrefix):
			return 0, fmt.Errorf("tensor %d: name %q has none of the prefixes %q, %q, %q", i, t.Name, ModelPrefix, BufferPrefix, OptimPrefix)
		case len(t.Shape) > nn.MaxTensorRank:
			return 0, fmt.Errorf("tensor %q: rank %d exceeds %d", t.Name, len(t.Shape), nn.MaxTensorRank)
		case !isHexSHA256(t.SHA256):
			return 0, fmt.Errorf("tensor %q: sha256 %q is not a hex SHA-256", t.Name, t.SHA256)
		}
		seen[t.Name] = true
		n := uint64(1)
		for _, d := range t.Shape {
			if d < 0 || uint64(d) > nn.MaxTensorElements {
				return 0, fmt.Errorf("tensor %q: dimension %d out of range in shape %v", t.Name, d, t.Shape)
			}
			n *= uint64(d) // no overflow: both factors are at most 2^31
			if n > nn.MaxTensorElements {
				return 0, fmt.Errorf("tensor %q: shape %v has over %d elements", t.Name, t.Shape, uint64(nn.MaxTensorElements))
			}
		}
		total += n
		if total > nn.MaxTensorElements {
			return 0, fmt.Errorf("the tensors hold over %d values in all", uint64(nn.MaxTensorElements))
		}
		size += 2 + uint64(len(t.Name)) + 1 + 4*uint64(len(t.Shape)) + 4*n
	}
	return size, nil
}

func isHexSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range []byte(s) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Load reads the checkpoint at path into s. It checks the
// manifest's format version, the size and SHA-256 of tensors.zst, the
// container, and each tensor's SHA-256 against the manifest; then it copies
// the tensors into the values of s.Params, s.Buffers and s.Optim by name (as
// nn.LoadState does, with the group prefixes) and sets s.Step, Epoch,
// Config (compacted; nil if saved nil), DatasetID, Pretext, RNG and Metrics.
//
// Every tensor of the checkpoint must fit a *Param of s and every *Param of
// s must have its tensor; if not, Load returns a *Error
// of kind "architecture" that lists every difference (missing and unexpected
// names, shape mismatches). On any error s is left unchanged, tensors
// included.
//
// Errors that describe the checkpoint are *Error (see its kinds);
// other I/O errors are returned wrapped.
func Load(path string, s *State) error {
	into, err := standIns(s)
	if err != nil {
		return fmt.Errorf("checkpoint: load %q: %w", path, err)
	}
	m, ts, err := read(path)
	if err != nil {
		return err
	}
	if err := nn.LoadState(into, ts); err != nil {
		return architectureError(path, err)
	}
	s.Step, s.Epoch = m.Step, m.Epoch
	s.Config = m.Config
	s.DatasetID, s.Pretext = m.DatasetID, m.Pretext
	s.RNG, s.Metrics = m.RNG, m.Metrics
	return nil
}

// LoadPartial is Load for a part of a model: it loads the tensors of
// s.Params and s.Buffers (s.Optim must be empty) from a checkpoint that
// may hold more, such as the encoder of a whole pretext model, and sets
// s's other fields. A tensor of s that the checkpoint lacks, or holds in
// another shape, is an error of kind "architecture"; on any error s is
// left unchanged.
func LoadPartial(path string, s *State) error {
	if len(s.Optim) > 0 {
		return fmt.Errorf("checkpoint: load %q: a partial load takes no optimiser state", path)
	}
	into, err := standIns(s)
	if err != nil {
		return fmt.Errorf("checkpoint: load %q: %w", path, err)
	}
	m, ts, err := read(path)
	if err != nil {
		return err
	}
	want := make(map[string]bool, len(into))
	for _, p := range into {
		want[p.Name] = true
	}
	ts = slices.DeleteFunc(ts, func(t nn.NamedTensor) bool { return !want[t.Name] })
	if err := nn.LoadState(into, ts); err != nil {
		return architectureError(path, err)
	}
	s.Step, s.Epoch = m.Step, m.Epoch
	s.Config = m.Config
	s.DatasetID, s.Pretext = m.DatasetID, m.Pretext
	s.RNG, s.Metrics = m.RNG, m.Metrics
	return nil
}

// architectureError describes nn.LoadState's error err for the checkpoint
// at path: every difference between its tensors and the model's.
func architectureError(path string, err error) error {
	var diffs diffList
	var multi interface{ Unwrap() []error }
	if errors.As(err, &multi) {
		diffs = multi.Unwrap()
	} else {
		diffs = diffList{err}
	}
	return &Error{Path: path, Kind: KindArchitecture, Err: diffs,
		Msg: fmt.Sprintf("made for another architecture (%d difference%s)", len(diffs), plural(len(diffs)))}
}

// read reads the manifest and the tensors of the checkpoint at
// path, checking the format version, the size and SHA-256 of tensors.zst,
// the container, and each tensor's name, shape and SHA-256 against the
// manifest.
func read(path string) (*Manifest, []nn.NamedTensor, error) {
	m, err := ReadManifest(path)
	if err != nil {
		return nil, nil, err
	}
	bad := func(kind, format string, args ...any) error {
		return &Error{Path: path, Kind: kind, Msg: fmt.Sprintf(format, args...)}
	}
	file := filepath.Join(path, TensorsFile)
	f, err := os.Open(file)
	if err != nil {
		return nil, nil, openError(path, TensorsFile, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("checkpoint %q: %w", path, err)
	}
	switch size := fi.Size(); {
	case size < m.TensorsBytes:
		return nil, nil, bad(KindTruncated, "%s is %d bytes: the manifest says %d", TensorsFile, size, m.TensorsBytes)
	case size > m.TensorsBytes:
		return nil, nil, bad(KindCorrupt, "%s is %d bytes: the manifest says %d", TensorsFile, size, m.TensorsBytes)
	}

	// First pass: the file's checksum, before decoding a byte of it.
	h := sha256.New()
	if _, err := io.Copy(h, io.LimitReader(f, m.TensorsBytes+1)); err != nil {
		return nil, nil, fmt.Errorf("checkpoint %q: %s: %w", path, TensorsFile, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != m.TensorsSHA256 {
		return nil, nil, bad(KindCorrupt, "%s SHA-256 mismatch (manifest %.12s…, file %.12s…)", TensorsFile, m.TensorsSHA256, got)
	}

	// Second pass: decode, bounded by the container size the manifest
	// implies.
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, nil, fmt.Errorf("checkpoint %q: %s: %w", path, TensorsFile, err)
	}
	raw, _ := containerSize(m.Tensors) // checked by ReadManifest
	zr, err := zstd.NewReader(bufio.NewReaderSize(f, 256<<10), zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderMaxWindow(64<<20), zstd.WithDecoderLowmem(true))
	if err != nil {
		return nil, nil, fmt.Errorf("checkpoint %q: %w", path, err)
	}
	defer zr.Close()
	ts, err := nn.ReadTensors(io.LimitReader(zr, int64(raw)+1))
	if err != nil {
		return nil, nil, &Error{Path: path, Kind: KindCorrupt, Msg: TensorsFile + " does not decode", Err: err}
	}
	if len(ts) != len(m.Tensors) {
		return nil, nil, bad(KindCorrupt, "%s holds %d tensors: the manifest lists %d", TensorsFile, len(ts), len(m.Tensors))
	}
	for i, nt := range ts {
		mt := m.Tensors[i]
		if nt.Name != mt.Name || !slices.Equal(nt.T.Shape, mt.Shape) {
			return nil, nil, bad(KindCorrupt, "tensor %d of %s is %q of shape %v: the manifest lists %q of shape %v",
				i, TensorsFile, nt.Name, nt.T.Shape, mt.Name, mt.Shape)
		}
		if got := tensorSHA256(nt.T.Data); got != mt.SHA256 {
			return nil, nil, bad(KindCorrupt, "tensor %q: SHA-256 mismatch (manifest %.12s…, data %.12s…)", nt.Name, mt.SHA256, got)
		}
	}

	return m, ts, nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// standIns returns, for every distinct *Param of s, a stand-in named with
// its group's prefix that shares its value tensor, so that one nn.LoadState
// call loads every group, all or nothing. It returns an error if a *Param is
// nil or two distinct parameters of a group share a name.
func standIns(s *State) ([]*nn.Param, error) {
	var all []*nn.Param
	for _, g := range []struct {
		prefix string
		ps     []*nn.Param
	}{{ModelPrefix, s.Params}, {BufferPrefix, s.Buffers}, {OptimPrefix, s.Optim}} {
		for i, p := range g.ps {
			if p == nil || p.Value == nil {
				return nil, fmt.Errorf("%s tensor %d is nil", strings.TrimSuffix(g.prefix, "/"), i)
			}
		}
		ps := nn.Unique(g.ps)
		if err := nn.CheckNames(ps); err != nil {
			return nil, err
		}
		for _, p := range ps {
			all = append(all, &nn.Param{Name: g.prefix + p.Name, Value: p.Value})
		}
	}
	return all, nil
}

// List returns the paths of the checkpoints in dir, by
// increasing step: the directories named DirName(step). Temporary
// directories of unfinished saves and anything else are ignored. A missing
// dir gives an error matching fs.ErrNotExist.
func List(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: list: %w", err)
	}
	type ckpt struct {
		step int
		path string
	}
	var cs []ckpt
	for _, e := range entries {
		if step, ok := stepOf(e.Name()); ok && e.IsDir() {
			cs = append(cs, ckpt{step, filepath.Join(dir, e.Name())})
		}
	}
	slices.SortFunc(cs, func(a, b ckpt) int { return cmp.Compare(a.step, b.step) })
	paths := make([]string, len(cs))
	for i, c := range cs {
		paths[i] = c.path
	}
	return paths, nil
}

// stepOf returns the step of a checkpoint directory's name, and
// whether name is one.
func stepOf(name string) (int, bool) {
	digits, ok := strings.CutPrefix(name, "ckpt-step-")
	if !ok {
		return 0, false
	}
	step, err := strconv.Atoi(digits)
	if err != nil || step < 0 || DirName(step) != name {
		return 0, false
	}
	return step, true
}

// Latest returns the path of the checkpoint of the highest step in
// dir. If there is none, or dir does not exist, the error matches
// ErrNone.
func Latest(dir string) (string, error) {
	paths, err := List(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("checkpoint: %q: %w: %w", dir, ErrNone, err)
	}
	if err != nil {
		return "", err
	}
	if len(paths) == 0 {
		return "", fmt.Errorf("checkpoint: %q: %w", dir, ErrNone)
	}
	return paths[len(paths)-1], nil
}

// Prune deletes the checkpoints of dir except the keepLast of
// highest step and those named in keep (such as the best checkpoint; an
// entry is matched by its base name, so a path as returned by
// Save or List, or a bare name, will do). Each
// checkpoint is first renamed to a hidden temporary name, then removed, so
// an interrupted prune never leaves a half-deleted checkpoint that looks
// whole. It returns an error if keepLast is negative.
func Prune(dir string, keepLast int, keep ...string) error {
	if keepLast < 0 {
		return fmt.Errorf("checkpoint: prune %q: keepLast %d is negative", dir, keepLast)
	}
	paths, err := List(dir)
	if err != nil {
		return err
	}
	kept := make(map[string]bool, len(keep))
	for _, k := range keep {
		kept[filepath.Base(k)] = true
	}
	var errs []error
	removed := false
	for _, p := range paths[:max(0, len(paths)-keepLast)] {
		name := filepath.Base(p)
		if kept[name] {
			continue
		}
		// A fresh name that List ignores.
		trash, err := os.MkdirTemp(dir, "."+name+".deleting-")
		if err == nil {
			err = os.Remove(trash)
		}
		if err == nil {
			err = os.Rename(p, trash)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		removed = true
		if err := os.RemoveAll(trash); err != nil {
			errs = append(errs, err)
		}
	}
	if removed {
		if err := fsutil.SyncDir(dir); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("checkpoint: prune %q: %w", dir, err)
	}
	return nil
}
