package probe

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"

	"github.com/patchwise-ml/patchwise/internal/fsutil"
	"github.com/patchwise-ml/patchwise/nn"
)

// CacheKey identifies cached features.
type CacheKey struct {
	Encoder string `json:"encoder"` // content hash of the encoder's weights, or "pixels"
	Dataset string `json:"dataset"` // dataset ID
	Split   string `json:"split"`
	Stage   int    `json:"stage"`  // encoder stage the features come from
	Pooled  int    `json:"pooled"` // side of the pooled feature map
}

// FileName returns the name of key's cache file: "features-" and the hex
// SHA-256 of the key's JSON encoding, then ".pwf".
func (k CacheKey) FileName() string {
	b, err := json.Marshal(k)
	if err != nil {
		panic(err) // strings and ints always encode
	}
	sum := sha256.Sum256(b)
	return "features-" + hex.EncodeToString(sum[:]) + ".pwf"
}

// A feature cache file holds one Features value and the key it was
// computed for. All integers are little-endian:
//
//	offset  size  field
//	0       8     magic "PWFEATUR"
//	8       4     uint32 format version (CacheVersion, 1)
//	12      4     uint32 header length L (at most 64 KiB)
//	16      L     header: JSON {"key": CacheKey, "n": N, "d": D, "classes": Classes}
//	16+L    4     uint32 CRC-32C (Castagnoli) of the bytes before it
//	20+L    ...   an nn.WriteTensors container (with its own CRC-32C) of
//	              "x" [N, D] (the features) and "labels" [N] (the labels, as float32)
const CacheVersion = 1

const (
	cacheMagic     = "PWFEATUR"
	maxCacheHeader = 64 << 10
)

// cacheHeader is the JSON header of a cache file.
type cacheHeader struct {
	Key     CacheKey `json:"key"`
	N       int      `json:"n"`
	D       int      `json:"d"`
	Classes int      `json:"classes"`
}

// CacheError reports a cache file that cannot be read back: damaged,
// truncated, of an unknown format version, or holding another key's
// features. Cached does not recompute over it: delete the file to
// recompute. Test for it with errors.As.
type CacheError struct {
	Path string // the cache file
	Msg  string // what is wrong
	Err  error  // underlying cause, such as an *nn.TensorFormatError; may be nil
}

func (e *CacheError) Error() string {
	s := fmt.Sprintf("probe: feature cache %q: %s", e.Path, e.Msg)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s + " (delete the file to recompute)"
}

func (e *CacheError) Unwrap() error { return e.Err }

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Cached returns the features for key from dir, a cache directory (created
// if missing), or, when dir has none, computes them with compute, stores
// them and returns them. hit reports that they came from the cache.
//
// The file (named by key.FileName) is written to a temporary file, fsynced
// and renamed into place, so a crash never leaves a half-written cache
// file; concurrent writers of the same key each leave a complete file. A
// cache file that cannot be read back gives a *CacheError naming it;
// Cached does not silently recompute. Features from compute are checked
// (Features.Check, non-finite values) before they are stored; errors from
// compute are returned as they are.
func Cached(dir string, key CacheKey, compute func() (*Features, error)) (f *Features, hit bool, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, false, fmt.Errorf("probe: feature cache: %w", err)
	}
	path := filepath.Join(dir, key.FileName())
	switch f, err := readCache(path, key); {
	case err == nil:
		return f, true, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, false, err
	}
	f, err = compute()
	if err != nil {
		return nil, false, err
	}
	if err := f.Check(); err != nil {
		return nil, false, fmt.Errorf("probe: feature cache %q: computed features: %w", path, err)
	}
	if err := f.CheckFinite(); err != nil {
		return nil, false, fmt.Errorf("probe: feature cache %q: computed features: %w", path, err)
	}
	if err := fsutil.Replace(path, func(w io.Writer) error { return writeCache(w, key, f) }); err != nil {
		return nil, false, fmt.Errorf("probe: feature cache %q: %w", path, err)
	}
	return f, false, nil
}

// writeCache encodes f and key to w in the cache file format.
func writeCache(w io.Writer, key CacheKey, f *Features) error {
	hdr, err := json.Marshal(cacheHeader{Key: key, N: f.N, D: f.D, Classes: f.Classes})
	if err != nil {
		return err
	}
	if len(hdr) > maxCacheHeader {
		return fmt.Errorf("key of %d bytes: the header holds at most %d", len(hdr), maxCacheHeader)
	}
	var b []byte
	b = append(b, cacheMagic...)
	b = binary.LittleEndian.AppendUint32(b, CacheVersion)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(hdr)))
	b = append(b, hdr...)
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	if _, err := w.Write(b); err != nil {
		return err
	}
	labels := make([]float32, f.N)
	for i, l := range f.Labels {
		labels[i] = float32(l)
	}
	return nn.WriteTensors(w, []nn.NamedTensor{
		{Name: "x", T: nn.FromData(f.X, f.N, f.D)},
		{Name: "labels", T: nn.FromData(labels, f.N)},
	})
}

// readCache reads the cache file path, checking that it holds key's
// features. A missing file gives an error matching fs.ErrNotExist; a bad
// one a *CacheError.
func readCache(path string, key CacheKey) (*Features, error) {
	file, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("probe: feature cache: %w", err)
	}
	defer file.Close()
	r := bufio.NewReaderSize(file, 1<<16)
	bad := func(err error, format string, args ...any) error {
		return &CacheError{Path: path, Msg: fmt.Sprintf(format, args...), Err: err}
	}
	var head [16]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return nil, bad(nil, "truncated header (%v)", err)
	}
	if string(head[:8]) != cacheMagic {
		return nil, bad(nil, "bad magic %q: not a feature cache file", head[:8])
	}
	if v := binary.LittleEndian.Uint32(head[8:]); v != CacheVersion {
		return nil, bad(nil, "format version %d not supported (this build reads version %d)", v, CacheVersion)
	}
	n := binary.LittleEndian.Uint32(head[12:])
	if n > maxCacheHeader {
		return nil, bad(nil, "header length %d exceeds %d", n, maxCacheHeader)
	}
	hdr := make([]byte, n+4)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return nil, bad(nil, "truncated header (%v)", err)
	}
	crc := crc32.Update(crc32.Checksum(head[:], castagnoli), castagnoli, hdr[:n])
	if got := binary.LittleEndian.Uint32(hdr[n:]); got != crc {
		return nil, bad(nil, "header checksum mismatch: file says 0x%08x, contents give 0x%08x", got, crc)
	}
	var h cacheHeader
	dec := json.NewDecoder(bytes.NewReader(hdr[:n]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil {
		return nil, bad(err, "bad header")
	}
	if h.Key != key {
		return nil, bad(nil, "holds the features of %+v, not %+v", h.Key, key)
	}
	ts, err := nn.ReadTensors(r)
	if err != nil {
		return nil, bad(err, "tensors")
	}
	if len(ts) != 2 || ts[0].Name != "x" || ts[1].Name != "labels" {
		names := make([]string, len(ts))
		for i, t := range ts {
			names[i] = t.Name
		}
		return nil, bad(nil, "tensors %q: want [\"x\" \"labels\"]", names)
	}
	x, lab := ts[0].T, ts[1].T
	if len(x.Shape) != 2 || x.Shape[0] != h.N || x.Shape[1] != h.D || len(lab.Shape) != 1 || lab.Shape[0] != h.N {
		return nil, bad(nil, "tensor shapes %v and %v disagree with the header's n %d and d %d", x.Shape, lab.Shape, h.N, h.D)
	}
	f := &Features{N: h.N, D: h.D, X: x.Data, Labels: make([]int, h.N), Classes: h.Classes}
	for i, v := range lab.Data {
		if v != float32(math.Trunc(float64(v))) || v < 0 || float64(v) >= float64(h.Classes) {
			return nil, bad(nil, "sample %d: label %v is not a class index in [0, %d)", i, v, h.Classes)
		}
		f.Labels[i] = int(v)
	}
	if err := f.Check(); err != nil {
		return nil, bad(err, "contents")
	}
	if err := f.CheckFinite(); err != nil {
		return nil, bad(err, "contents")
	}
	return f, nil
}
