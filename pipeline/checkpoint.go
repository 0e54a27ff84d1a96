package pipeline

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

// A checkpoint is a directory named ckpt-step-%08d (CheckpointName) holding
// two files:
//
//   - manifest.json: a JSON object with format_version (CheckpointVersion),
//     step, epoch, config (the run's config, as the caller gave it), dataset_id,
//     pretext (the model's name), rng (named random-source states, such as the
//     MarshalBinary of an nn.NewRNG *rand.PCG, each base64), metrics (a few
//     numbers such as val_loss, for choosing the best checkpoint), tensors
//     (each tensor's name, shape and the hex SHA-256 of its values as raw
//     little-endian float32 bytes, in file order), tensors_bytes (the size of
//     tensors.zst) and tensors_sha256 (the hex SHA-256 of tensors.zst);
//   - tensors.zst: the zstd compression of an nn.WriteTensors container of
//     the model's parameters, its buffers and the optimiser's state.
//
// Tensor names in the container and the manifest carry a prefix that says
// which group they belong to, so names never collide across groups:
// "model/" for parameters (CheckpointState.Params), "buffer/" for buffers
// such as batch-norm running statistics (Buffers), "optim/" for optimiser
// state (Optim). For example "model/encoder.block1.conv.weight",
// "buffer/encoder.block1.bn.running_mean", "optim/encoder.block1.conv.weight.momentum".
//
// SaveCheckpoint writes into a temporary directory .ckpt-step-%08d.partial-*
// beside the destination, syncs every file and the directory, then renames
// it into place: a checkpoint directory either holds a complete checkpoint
// or does not exist. ListCheckpoints ignores temporary directories.
const (
	// CheckpointVersion is the checkpoint format version that
	// SaveCheckpoint writes and the only one LoadCheckpoint reads.
	CheckpointVersion = 1

	// CheckpointManifestFile and CheckpointTensorsFile are the names of a
	// checkpoint's two files.
	CheckpointManifestFile = "manifest.json"
	CheckpointTensorsFile  = "tensors.zst"
)

// Prefixes of tensor names in a checkpoint, by group.
const (
	ModelPrefix  = "model/"
	BufferPrefix = "buffer/"
	OptimPrefix  = "optim/"
)

// maxCheckpointManifest is the largest manifest.json LoadCheckpoint reads.
const maxCheckpointManifest = 64 << 20

// CheckpointName returns the directory name of the checkpoint of step:
// "ckpt-step-00012000" for 12000.
func CheckpointName(step int) string { return fmt.Sprintf("ckpt-step-%08d", step) }

// CheckpointState is what a checkpoint holds. SaveCheckpoint reads every
// field; LoadCheckpoint copies the tensors into the values of Params, Buffers
// and Optim, which the caller has built for the model (matching by name), and
// sets the other fields.
type CheckpointState struct {
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

// CheckpointManifest is the content of a checkpoint's manifest.json.
type CheckpointManifest struct {
	FormatVersion int                `json:"format_version"`
	Step          int                `json:"step"`
	Epoch         int                `json:"epoch"`
	Config        json.RawMessage    `json:"config"`
	DatasetID     string             `json:"dataset_id"`
	Pretext       string             `json:"pretext"`
	RNG           map[string][]byte  `json:"rng"`
	Metrics       map[string]float64 `json:"metrics"`
	Tensors       []CheckpointTensor `json:"tensors"`
	TensorsBytes  int64              `json:"tensors_bytes"`  // size of tensors.zst
	TensorsSHA256 string             `json:"tensors_sha256"` // hex SHA-256 of tensors.zst
}

// CheckpointTensor describes one tensor of a checkpoint.
type CheckpointTensor struct {
	Name   string `json:"name"`   // prefixed: "model/…", "buffer/…" or "optim/…"
	Shape  []int  `json:"shape"`  // outermost first; [] for a scalar
	SHA256 string `json:"sha256"` // hex SHA-256 of the values as little-endian float32 bytes
}

// Kinds of CheckpointError.
const (
	KindTruncated    = "truncated"    // a file is shorter than the manifest says, or manifest.json ends early
	KindCorrupt      = "corrupt"      // a checksum mismatch or malformed contents
	KindVersion      = "version"      // a format_version this build does not read
	KindArchitecture = "architecture" // the tensors do not fit the model given to LoadCheckpoint
	KindMissing      = "missing"      // the directory or one of its files does not exist
)

// Sentinels that a *CheckpointError matches with errors.Is, one per kind.
var (
	ErrCheckpointTruncated    = errors.New("pipeline: checkpoint truncated")
	ErrCheckpointCorrupt      = errors.New("pipeline: checkpoint corrupt")
	ErrCheckpointVersion      = errors.New("pipeline: checkpoint format version not supported")
	ErrCheckpointArchitecture = errors.New("pipeline: checkpoint made for another architecture")
	ErrCheckpointMissing      = errors.New("pipeline: checkpoint missing")
)

// ErrNoCheckpoint is returned, wrapped, by LatestCheckpoint when a directory
// holds no checkpoint.
var ErrNoCheckpoint = errors.New("no checkpoint")

var kindSentinels = map[string]error{
	KindTruncated:    ErrCheckpointTruncated,
	KindCorrupt:      ErrCheckpointCorrupt,
	KindVersion:      ErrCheckpointVersion,
	KindArchitecture: ErrCheckpointArchitecture,
	KindMissing:      ErrCheckpointMissing,
}

// CheckpointError reports a checkpoint that cannot be loaded, and why: Kind
// is one of KindTruncated, KindCorrupt, KindVersion, KindArchitecture and
// KindMissing. Test for a kind with errors.Is and the matching sentinel
// (ErrCheckpointCorrupt, …), or with errors.As and Kind. Missing files also
// match fs.ErrNotExist. For KindArchitecture, Err lists every difference
// (its Unwrap() []error gives them one by one).
type CheckpointError struct {
	Path string // the checkpoint directory
	Kind string // KindTruncated, KindCorrupt, KindVersion, KindArchitecture or KindMissing
	Msg  string // what is wrong
	Err  error  // the underlying cause, if any
}

func (e *CheckpointError) Error() string {
	s := fmt.Sprintf("pipeline: checkpoint %q: %s: %s", e.Path, e.Kind, e.Msg)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the underlying cause, if any.
func (e *CheckpointError) Unwrap() error { return e.Err }

// Is reports whether target is the sentinel of e's kind.
func (e *CheckpointError) Is(target error) bool {
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

// SaveCheckpoint writes s as the checkpoint of step s.Step into the
// directory dir/CheckpointName(s.Step), creating dir if needed, and returns
// its path. It refuses, with an error matching fs.ErrExist, to replace a
// checkpoint of the same step.
//
// The checkpoint is written into a temporary directory in dir whose files and
// the directory itself are synced before it is renamed into place, and dir
// is synced after. If anything fails (a full disk, say), the temporary
// directory is removed and no other checkpoint is touched.
//
// The tensors are read, not copied: do not change them until SaveCheckpoint
// returns. It returns an error if s.Step or s.Epoch is negative, a metric is
// not finite, s.Config is not valid JSON, a *Param is nil, or two distinct
// parameters of one group share a name.
func SaveCheckpoint(dir string, s CheckpointState) (string, error) {
	return saveCheckpoint(dir, s, fsutil.CreateExcl)
}

func saveCheckpoint(dir string, s CheckpointState, create createFunc) (string, error) {
	name := CheckpointName(s.Step)
	final := filepath.Join(dir, name)
	fail := func(err error) (string, error) {
		return "", fmt.Errorf("pipeline: save checkpoint %q: %w", final, err)
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
	ts, err := checkpointTensors(s)
	if err != nil {
		return fail(err)
	}
	if err := refuseExistingCheckpoint(final); err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fail(err)
	}
	tmp, err := os.MkdirTemp(dir, "."+name+".partial-")
	if err != nil {
		return fail(err)
	}
	if err := writeCheckpointDir(tmp, final, s, ts, create); err != nil {
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

// refuseExistingCheckpoint returns an error matching fs.ErrExist when path
// exists.
func refuseExistingCheckpoint(path string) error {
	_, err := os.Lstat(path)
	switch {
	case err == nil:
		return fmt.Errorf("pipeline: save checkpoint %q: a checkpoint of this step already exists: %w", path, fs.ErrExist)
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("pipeline: save checkpoint %q: %w", path, err)
	}
	return nil
}

// checkpointTensors returns the prefixed tensors of s, each *Param once.
func checkpointTensors(s CheckpointState) ([]nn.NamedTensor, error) {
	ps, err := standIns(&s)
	if err != nil {
		return nil, err
	}
	return nn.StateOf(ps), nil
}

// writeCheckpointDir writes the checkpoint's files into tmp, syncs them and
// tmp, and renames tmp to final.
func writeCheckpointDir(tmp, final string, s CheckpointState, ts []nn.NamedTensor, create createFunc) error {
	// MkdirTemp makes the directory private; checkpoints are for sharing.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	m := CheckpointManifest{
		FormatVersion: CheckpointVersion,
		Step:          s.Step,
		Epoch:         s.Epoch,
		Config:        s.Config,
		DatasetID:     s.DatasetID,
		Pretext:       s.Pretext,
		RNG:           s.RNG,
		Metrics:       s.Metrics,
		Tensors:       make([]CheckpointTensor, len(ts)),
	}
	if m.Config == nil {
		m.Config = json.RawMessage("null")
	}
	for i, nt := range ts {
		m.Tensors[i] = CheckpointTensor{Name: nt.Name, Shape: slices.Clone(nt.T.Shape), SHA256: tensorSHA256(nt.T.Data)}
		if m.Tensors[i].Shape == nil {
			m.Tensors[i].Shape = []int{}
		}
	}
	n, sum, err := writeTensorsFile(filepath.Join(tmp, CheckpointTensorsFile), ts, create)
	if err != nil {
		return err
	}
	m.TensorsBytes, m.TensorsSHA256 = n, sum
	b, err := json.MarshalIndent(&m, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if err := fsutil.WriteSynced(filepath.Join(tmp, CheckpointManifestFile), create, func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	}); err != nil {
		return err
	}
	if err := fsutil.SyncDir(tmp); err != nil {
		return err
	}
	if err := refuseExistingCheckpoint(final); err != nil {
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
	hashFloats(h, data)
	return hex.EncodeToString(h.Sum(nil))
}

func hashFloats(h hash.Hash, data []float32) {
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

// ReadCheckpointManifest reads and checks the manifest.json of the
// checkpoint at path, without reading the tensors: use it to learn a
// checkpoint's config and pretext before building the model to load it
// into. Errors are as for LoadCheckpoint.
func ReadCheckpointManifest(path string) (*CheckpointManifest, error) {
	f, err := os.Open(filepath.Join(path, CheckpointManifestFile))
	if err != nil {
		return nil, openError(path, CheckpointManifestFile, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxCheckpointManifest+1))
	if err != nil {
		return nil, fmt.Errorf("pipeline: checkpoint %q: %s: %w", path, CheckpointManifestFile, err)
	}
	m, err := parseCheckpointManifest(b)
	if err != nil {
		var ce *CheckpointError
		if errors.As(err, &ce) {
			ce.Path = path
		}
		return nil, err
	}
	return m, nil
}

// openError describes a failure to open a checkpoint's file: a
// *CheckpointError of kind "missing" if it does not exist.
func openError(path, file string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		msg := file + " does not exist"
		if _, serr := os.Stat(path); errors.Is(serr, fs.ErrNotExist) {
			msg = "no such checkpoint directory"
		}
		return &CheckpointError{Path: path, Kind: KindMissing, Msg: msg, Err: fs.ErrNotExist}
	}
	return fmt.Errorf("pipeline: checkpoint %q: %s: %w", path, file, err)
}

// parseCheckpointManifest decodes and checks a manifest. Errors are
// *CheckpointError with an empty Path.
func parseCheckpointManifest(b []byte) (*CheckpointManifest, error) {
	bad := func(kind, format string, args ...any) error {
		return &CheckpointError{Kind: kind, Msg: CheckpointManifestFile + ": " + fmt.Sprintf(format, args...)}
	}
	jsonErr := func(err error) error {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return bad(KindTruncated, "ends early (%d bytes)", len(b))
		}
		return &CheckpointError{Kind: KindCorrupt, Msg: CheckpointManifestFile + ": bad JSON", Err: err}
	}
	if len(b) > maxCheckpointManifest {
		return nil, bad(KindCorrupt, "larger than %d bytes", maxCheckpointManifest)
	}
	// The version first, leniently: another version may have other fields.
	var v struct {
		FormatVersion *json.Number `json:"format_version"`
	}
	if err := json.NewDecoder(bytes.NewReader(b)).Decode(&v); err != nil {
		return nil, jsonErr(err)
	}
	if v.FormatVersion == nil {
		return nil, bad(KindCorrupt, "no format_version (this build reads version %d)", CheckpointVersion)
	}
	if ver, err := v.FormatVersion.Int64(); err != nil || ver != CheckpointVersion {
		return nil, bad(KindVersion, "format_version %s is not supported: this build reads version %d only", v.FormatVersion, CheckpointVersion)
	}
	var m CheckpointManifest
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
func checkManifest(m *CheckpointManifest) error {
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
func containerSize(ts []CheckpointTensor) (uint64, error) {
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

// LoadCheckpoint reads the checkpoint at path into s. It checks the
// manifest's format version, the size and SHA-256 of tensors.zst, the
// container, and each tensor's SHA-256 against the manifest; then it copies
// the tensors into the values of s.Params, s.Buffers and s.Optim by name (as
// nn.LoadState does, with the group prefixes) and sets s.Step, Epoch,
// Config (compacted; nil if saved nil), DatasetID, Pretext, RNG and Metrics.
//
// Every tensor of the checkpoint must fit a *Param of s and every *Param of
// s must have its tensor; if not, LoadCheckpoint returns a *CheckpointError
// of kind "architecture" that lists every difference (missing and unexpected
// names, shape mismatches). On any error s is left unchanged, tensors
// included.
//
// Errors that describe the checkpoint are *CheckpointError (see its kinds);
// other I/O errors are returned wrapped.
func LoadCheckpoint(path string, s *CheckpointState) error {
	into, err := standIns(s)
	if err != nil {
		return fmt.Errorf("pipeline: load checkpoint %q: %w", path, err)
	}
	m, ts, err := readCheckpoint(path)
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
	return &CheckpointError{Path: path, Kind: KindArchitecture, Err: diffs,
		Msg: fmt.Sprintf("made for another architecture (%d difference%s)", len(diffs), plural(len(diffs)))}
}

// readCheckpoint reads the manifest and the tensors of the checkpoint at
// path, checking the format version, the size and SHA-256 of tensors.zst,
// the container, and each tensor's name, shape and SHA-256 against the
// manifest.
func readCheckpoint(path string) (*CheckpointManifest, []nn.NamedTensor, error) {
	m, err := ReadCheckpointManifest(path)
	if err != nil {
		return nil, nil, err
	}
	bad := func(kind, format string, args ...any) error {
		return &CheckpointError{Path: path, Kind: kind, Msg: fmt.Sprintf(format, args...)}
	}
	file := filepath.Join(path, CheckpointTensorsFile)
	f, err := os.Open(file)
	if err != nil {
		return nil, nil, openError(path, CheckpointTensorsFile, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("pipeline: checkpoint %q: %w", path, err)
	}
	switch size := fi.Size(); {
	case size < m.TensorsBytes:
		return nil, nil, bad(KindTruncated, "%s is %d bytes: the manifest says %d", CheckpointTensorsFile, size, m.TensorsBytes)
	case size > m.TensorsBytes:
		return nil, nil, bad(KindCorrupt, "%s is %d bytes: the manifest says %d", CheckpointTensorsFile, size, m.TensorsBytes)
	}

	// First pass: the file's checksum, before decoding a byte of it.
	h := sha256.New()
	if _, err := io.Copy(h, io.LimitReader(f, m.TensorsBytes+1)); err != nil {
		return nil, nil, fmt.Errorf("pipeline: checkpoint %q: %s: %w", path, CheckpointTensorsFile, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != m.TensorsSHA256 {
		return nil, nil, bad(KindCorrupt, "%s SHA-256 mismatch (manifest %.12s…, file %.12s…)", CheckpointTensorsFile, m.TensorsSHA256, got)
	}

	// Second pass: decode, bounded by the container size the manifest
	// implies.
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, nil, fmt.Errorf("pipeline: checkpoint %q: %s: %w", path, CheckpointTensorsFile, err)
	}
	raw, _ := containerSize(m.Tensors) // checked by ReadCheckpointManifest
	zr, err := zstd.NewReader(bufio.NewReaderSize(f, 256<<10), zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderMaxWindow(64<<20), zstd.WithDecoderLowmem(true))
	if err != nil {
		return nil, nil, fmt.Errorf("pipeline: checkpoint %q: %w", path, err)
	}
	defer zr.Close()
	ts, err := nn.ReadTensors(io.LimitReader(zr, int64(raw)+1))
	if err != nil {
		return nil, nil, &CheckpointError{Path: path, Kind: KindCorrupt, Msg: CheckpointTensorsFile + " does not decode", Err: err}
	}
	if len(ts) != len(m.Tensors) {
		return nil, nil, bad(KindCorrupt, "%s holds %d tensors: the manifest lists %d", CheckpointTensorsFile, len(ts), len(m.Tensors))
	}
	for i, nt := range ts {
		mt := m.Tensors[i]
		if nt.Name != mt.Name || !slices.Equal(nt.T.Shape, mt.Shape) {
			return nil, nil, bad(KindCorrupt, "tensor %d of %s is %q of shape %v: the manifest lists %q of shape %v",
				i, CheckpointTensorsFile, nt.Name, nt.T.Shape, mt.Name, mt.Shape)
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
func standIns(s *CheckpointState) ([]*nn.Param, error) {
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

// ListCheckpoints returns the paths of the checkpoints in dir, by
// increasing step: the directories named CheckpointName(step). Temporary
// directories of unfinished saves and anything else are ignored. A missing
// dir gives an error matching fs.ErrNotExist.
func ListCheckpoints(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("pipeline: list checkpoints: %w", err)
	}
	type ckpt struct {
		step int
		path string
	}
	var cs []ckpt
	for _, e := range entries {
		if step, ok := checkpointStep(e.Name()); ok && e.IsDir() {
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

// checkpointStep returns the step of a checkpoint directory's name, and
// whether name is one.
func checkpointStep(name string) (int, bool) {
	digits, ok := strings.CutPrefix(name, "ckpt-step-")
	if !ok {
		return 0, false
	}
	step, err := strconv.Atoi(digits)
	if err != nil || step < 0 || CheckpointName(step) != name {
		return 0, false
	}
	return step, true
}

// LatestCheckpoint returns the path of the checkpoint of the highest step in
// dir. If there is none, or dir does not exist, the error matches
// ErrNoCheckpoint.
func LatestCheckpoint(dir string) (string, error) {
	paths, err := ListCheckpoints(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("pipeline: %q: %w: %w", dir, ErrNoCheckpoint, err)
	}
	if err != nil {
		return "", err
	}
	if len(paths) == 0 {
		return "", fmt.Errorf("pipeline: %q: %w", dir, ErrNoCheckpoint)
	}
	return paths[len(paths)-1], nil
}

// PruneCheckpoints deletes the checkpoints of dir except the keepLast of
// highest step and those named in keep (such as the best checkpoint; an
// entry is matched by its base name, so a path as returned by
// SaveCheckpoint or ListCheckpoints, or a bare name, will do). Each
// checkpoint is first renamed to a hidden temporary name, then removed, so
// an interrupted prune never leaves a half-deleted checkpoint that looks
// whole. It returns an error if keepLast is negative.
func PruneCheckpoints(dir string, keepLast int, keep ...string) error {
	if keepLast < 0 {
		return fmt.Errorf("pipeline: prune checkpoints %q: keepLast %d is negative", dir, keepLast)
	}
	paths, err := ListCheckpoints(dir)
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
		// A fresh name that ListCheckpoints ignores.
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
		return fmt.Errorf("pipeline: prune checkpoints %q: %w", dir, err)
	}
	return nil
}
