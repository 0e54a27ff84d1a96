package checkpoint

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/patchwise-ml/patchwise/internal/fsutil"
	"github.com/patchwise-ml/patchwise/nn"
)

// ckptModel is a small conv net with an SGD optimiser, for checkpoint
// tests: conv(1→width) → BN → ReLU → global pool → linear(width→3).
type ckptModel struct {
	net *nn.Sequential
	opt nn.Optimizer
}

func newCkptModel(width int, seed uint64) *ckptModel {
	rng, _ := nn.NewRNG(seed)
	net := nn.NewSequential(
		nn.NewConv2D("conv", 1, width, 3, 1, 1, true, rng),
		nn.NewBatchNorm2D("bn", width),
		nn.NewReLU(),
		nn.NewGlobalAvgPool(),
		nn.NewLinear("head", width, 3, rng),
	)
	return &ckptModel{net: net, opt: nn.NewSGD(net.Params(), 0.9, 1e-4, false)}
}

// train takes one SGD step on random data, so that the weights, the
// batch-norm running statistics and the momenta are all non-trivial.
func (m *ckptModel) train(seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 1))
	x := nn.NewTensor(2, 6, 6, 1)
	for i := range x.Data {
		x.Data[i] = float32(rng.NormFloat64())
	}
	y := m.net.Forward(x, true)
	dy := nn.NewTensor(y.Shape...)
	for i := range dy.Data {
		dy.Data[i] = float32(rng.NormFloat64())
	}
	nn.ZeroGrads(m.net.Params())
	m.net.Backward(dy)
	m.opt.Step(0.1)
}

func (m *ckptModel) state() State {
	return State{Params: m.net.Params(), Buffers: m.net.Buffers(), Optim: m.opt.State()}
}

// values returns copies of every tensor of the model and optimiser, by
// prefixed name.
func (m *ckptModel) values() map[string][]float32 {
	v := map[string][]float32{}
	s := m.state()
	for _, p := range s.Params {
		v[ModelPrefix+p.Name] = slices.Clone(p.Value.Data)
	}
	for _, p := range s.Buffers {
		v[BufferPrefix+p.Name] = slices.Clone(p.Value.Data)
	}
	for _, p := range s.Optim {
		v[OptimPrefix+p.Name] = slices.Clone(p.Value.Data)
	}
	return v
}

func bitsEqual(a, b []float32) bool {
	return slices.EqualFunc(a, b, func(x, y float32) bool { return math.Float32bits(x) == math.Float32bits(y) })
}

// saveTrained saves a trained width-4 model as the checkpoint of step into
// dir and returns its path and the model.
func saveTrained(t *testing.T, dir string, step int) (string, *ckptModel) {
	t.Helper()
	m := newCkptModel(4, 1)
	m.train(uint64(step))
	s := m.state()
	s.Step, s.Epoch = step, 1
	s.Config = json.RawMessage(`{"lr": 0.1}`)
	s.Metrics = map[string]float64{"val_loss": 1.5}
	path, err := Save(dir, s)
	if err != nil {
		t.Fatal(err)
	}
	return path, m
}

func wantKind(t *testing.T, err error, kind string, sentinel error, mentions ...string) {
	t.Helper()
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("error %v (%T): want a *Error of kind %q", err, err, kind)
	}
	if ce.Kind != kind || !errors.Is(err, sentinel) {
		t.Fatalf("error %q: kind %q, want %q", err, ce.Kind, kind)
	}
	for _, k := range kindSentinels {
		if k != sentinel && errors.Is(err, k) {
			t.Errorf("error %q also matches %v", err, k)
		}
	}
	for _, s := range mentions {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
}

// entries returns the names in dir.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestCheckpointRoundTrip(t *testing.T) {
	dir := t.TempDir()
	m := newCkptModel(4, 1)
	m.train(1)
	for _, p := range m.opt.State() {
		if !slices.ContainsFunc(p.Value.Data, func(v float32) bool { return v != 0 }) {
			t.Fatalf("momentum %s is all zero: the test needs a step taken", p.Name)
		}
	}
	rng, pcg := nn.NewRNG(7)
	for range 5 {
		rng.Uint64()
	}
	rngState, err := pcg.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	s := m.state()
	s.Step, s.Epoch = 12000, 3
	s.Config = json.RawMessage(`{"pretext": "relpos", "lr": 0.1, "batch": 8}`)
	s.DatasetID = strings.Repeat("ab", 32)
	s.Pretext = "relpos"
	s.RNG = map[string][]byte{"train": rngState}
	s.Metrics = map[string]float64{"val_loss": 0.75, "val_acc": 0.5}
	path, err := Save(dir, s)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "ckpt-step-00012000"); path != want {
		t.Errorf("path %q, want %q", path, want)
	}
	if got := entries(t, dir); !slices.Equal(got, []string{"ckpt-step-00012000"}) {
		t.Errorf("dir holds %q", got)
	}
	if got := entries(t, path); !slices.Equal(got, []string{"manifest.json", "tensors.zst"}) {
		t.Errorf("checkpoint holds %q", got)
	}
	want := m.values()
	var next []uint64
	for range 4 {
		next = append(next, rng.Uint64())
	}

	// The manifest has the documented fields.
	b, err := os.ReadFile(filepath.Join(path, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"format_version", "step", "epoch", "config", "dataset_id", "pretext", "rng", "metrics", "tensors", "tensors_bytes", "tensors_sha256"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("manifest has no %q", k)
		}
	}
	man, err := ReadManifest(path)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, ct := range man.Tensors {
		names = append(names, ct.Name)
	}
	wantNames := []string{"model/conv.weight", "model/conv.bias", "model/bn.weight", "model/bn.bias", "model/head.weight", "model/head.bias",
		"buffer/bn.running_mean", "buffer/bn.running_var",
		"optim/conv.weight.momentum", "optim/conv.bias.momentum", "optim/bn.weight.momentum", "optim/bn.bias.momentum", "optim/head.weight.momentum", "optim/head.bias.momentum"}
	if !slices.Equal(names, wantNames) {
		t.Errorf("tensors %q\nwant %q", names, wantNames)
	}

	// Load into a fresh model of another seed.
	m2 := newCkptModel(4, 99)
	s2 := m2.state()
	if err := Load(path, &s2); err != nil {
		t.Fatal(err)
	}
	got := m2.values()
	if len(got) != len(want) {
		t.Fatalf("%d tensors, want %d", len(got), len(want))
	}
	for name, w := range want {
		if !bitsEqual(got[name], w) {
			t.Errorf("%s differs after load", name)
		}
	}
	if s2.Step != 12000 || s2.Epoch != 3 || s2.Pretext != "relpos" || s2.DatasetID != s.DatasetID {
		t.Errorf("loaded step %d epoch %d pretext %q dataset %q", s2.Step, s2.Epoch, s2.Pretext, s2.DatasetID)
	}
	if string(s2.Config) != `{"pretext":"relpos","lr":0.1,"batch":8}` {
		t.Errorf("config %s", s2.Config)
	}
	if len(s2.Metrics) != 2 || s2.Metrics["val_loss"] != 0.75 || s2.Metrics["val_acc"] != 0.5 {
		t.Errorf("metrics %v", s2.Metrics)
	}
	pcg2 := rand.NewPCG(0, 0)
	if err := pcg2.UnmarshalBinary(s2.RNG["train"]); err != nil {
		t.Fatal(err)
	}
	rng2 := rand.New(pcg2)
	for i, w := range next {
		if g := rng2.Uint64(); g != w {
			t.Fatalf("draw %d after restore: %d, want %d", i, g, w)
		}
	}

	// The two models now train identically.
	m.train(5)
	m2.train(5)
	got, want = m2.values(), m.values()
	for name, w := range want {
		if !bitsEqual(got[name], w) {
			t.Errorf("%s differs after a further step", name)
		}
	}
}

func TestCheckpointTiedWeights(t *testing.T) {
	dir := t.TempDir()
	rng, _ := nn.NewRNG(3)
	conv := nn.NewConv2D("enc", 1, 2, 3, 1, 1, false, rng)
	dec := nn.NewTiedConvTranspose2D("dec", conv, 0, true)
	ps := append(conv.Params(), dec.Params()...) // conv.Weight twice
	path, err := Save(dir, State{Params: ps})
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(conv.Weight.Value.Data)
	clear(conv.Weight.Value.Data)
	if err := Load(path, &State{Params: ps}); err != nil {
		t.Fatal(err)
	}
	if !bitsEqual(conv.Weight.Value.Data, want) {
		t.Error("tied weight not restored")
	}
}

func TestSaveCheckpointRefusesOverwrite(t *testing.T) {
	dir := t.TempDir()
	path, m := saveTrained(t, dir, 400)
	before, err := os.ReadFile(filepath.Join(path, "tensors.zst"))
	if err != nil {
		t.Fatal(err)
	}
	m.train(9)
	s := m.state()
	s.Step = 400
	_, err = Save(dir, s)
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second save of step 400: %v, want an error matching fs.ErrExist", err)
	}
	after, err := os.ReadFile(filepath.Join(path, "tensors.zst"))
	if err != nil || !bytes.Equal(before, after) {
		t.Errorf("the checkpoint changed (%v)", err)
	}
	if got := entries(t, dir); !slices.Equal(got, []string{"ckpt-step-00000400"}) {
		t.Errorf("dir holds %q", got)
	}
}

func TestSaveCheckpointBadState(t *testing.T) {
	m := newCkptModel(2, 1)
	for name, s := range map[string]State{
		"negative step": {Step: -1, Params: m.net.Params()},
		"NaN metric":    {Metrics: map[string]float64{"val_loss": math.NaN()}},
		"bad config":    {Config: json.RawMessage(`{"lr":`)},
		"nil param":     {Params: []*nn.Param{nil}},
		"shared name":   {Params: []*nn.Param{{Name: "w", Value: nn.NewTensor(1)}, {Name: "w", Value: nn.NewTensor(1)}}},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := Save(dir, s); err == nil {
				t.Fatal("want an error")
			}
			if got := entries(t, dir); len(got) != 0 {
				t.Errorf("dir holds %q", got)
			}
		})
	}
}

// failingCreate returns a createFunc whose files fail with ENOSPC once
// budget bytes have been written to them in all, or, with failSync, on
// Sync.
func failingCreate(budget int64, failSync bool) createFunc {
	left := budget
	return func(path string) (fsutil.File, error) {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return nil, err
		}
		return &failingFile{f: f, left: &left, failSync: failSync}, nil
	}
}

type failingFile struct {
	f        *os.File
	left     *int64
	failSync bool
}

func (w *failingFile) Write(p []byte) (int, error) {
	if int64(len(p)) > *w.left {
		n, _ := w.f.Write(p[:*w.left])
		*w.left = 0
		return n, &fs.PathError{Op: "write", Path: w.f.Name(), Err: syscall.ENOSPC}
	}
	*w.left -= int64(len(p))
	return w.f.Write(p)
}

func (w *failingFile) Sync() error {
	if w.failSync {
		return &fs.PathError{Op: "sync", Path: w.f.Name(), Err: syscall.EIO}
	}
	return w.f.Sync()
}

func (w *failingFile) Close() error { return w.f.Close() }

func TestSaveCheckpointWriteFailure(t *testing.T) {
	dir := t.TempDir()
	prev, m := saveTrained(t, dir, 100)
	prevValues := m.values()
	prevFiles := map[string][]byte{}
	for _, f := range []string{"manifest.json", "tensors.zst"} {
		b, err := os.ReadFile(filepath.Join(prev, f))
		if err != nil {
			t.Fatal(err)
		}
		prevFiles[f] = b
	}
	m.train(2)
	s := m.state()
	s.Step = 200

	// How much a successful save writes.
	probe := t.TempDir()
	p, err := save(probe, s, failingCreate(math.MaxInt64, false))
	if err != nil {
		t.Fatal(err)
	}
	man, err := ReadManifest(p)
	if err != nil {
		t.Fatal(err)
	}
	zb := man.TensorsBytes
	mb := int64(len(prevFiles["manifest.json"]))

	cases := []struct {
		budget   int64
		failSync bool
	}{{0, false}, {1, false}, {zb / 2, false}, {zb - 1, false}, {zb, false}, {zb + mb/2, false}, {math.MaxInt64, true}}
	for _, c := range cases {
		t.Run(fmt.Sprintf("budget=%d,failSync=%v", c.budget, c.failSync), func(t *testing.T) {
			_, err := save(dir, s, failingCreate(c.budget, c.failSync))
			switch {
			case err == nil:
				t.Fatal("save succeeded")
			case c.failSync && !errors.Is(err, syscall.EIO), !c.failSync && !errors.Is(err, syscall.ENOSPC):
				t.Errorf("error %v does not carry the write's cause", err)
			}
			if got := entries(t, dir); !slices.Equal(got, []string{"ckpt-step-00000100"}) {
				t.Errorf("dir holds %q: want only the previous checkpoint", got)
			}
			for f, want := range prevFiles {
				if got, err := os.ReadFile(filepath.Join(prev, f)); err != nil || !bytes.Equal(got, want) {
					t.Errorf("%s of the previous checkpoint changed (%v)", f, err)
				}
			}
			m2 := newCkptModel(4, 5)
			s2 := m2.state()
			if err := Load(prev, &s2); err != nil {
				t.Fatal(err)
			}
			for name, w := range prevValues {
				if !bitsEqual(m2.values()[name], w) {
					t.Errorf("%s of the previous checkpoint differs", name)
				}
			}
		})
	}
}

func TestLoadCheckpointTruncated(t *testing.T) {
	dir := t.TempDir()
	path, _ := saveTrained(t, dir, 400)
	for _, file := range []string{"tensors.zst", "manifest.json"} {
		full, err := os.ReadFile(filepath.Join(path, file))
		if err != nil {
			t.Fatal(err)
		}
		// All but the last byte that matters: a manifest without its final
		// newline is whole.
		last := len(bytes.TrimRight(full, "\n"))
		for _, n := range []int{0, len(full) / 2, last - 1} {
			t.Run(fmt.Sprintf("%s/%d", file, n), func(t *testing.T) {
				if err := os.WriteFile(filepath.Join(path, file), full[:n], 0o644); err != nil {
					t.Fatal(err)
				}
				defer os.WriteFile(filepath.Join(path, file), full, 0o644)
				m := newCkptModel(4, 2)
				before := m.values()
				s := m.state()
				err := Load(path, &s)
				wantKind(t, err, KindTruncated, ErrTruncated, path, file)
				for name, w := range before {
					if !bitsEqual(m.values()[name], w) {
						t.Errorf("%s changed by a failed load", name)
					}
				}
			})
		}
	}
	// Bytes appended are corruption, not truncation.
	f, err := os.OpenFile(filepath.Join(path, "tensors.zst"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{0})
	f.Close()
	s := newCkptModel(4, 2).state()
	wantKind(t, Load(path, &s), KindCorrupt, ErrCorrupt)
}

func TestLoadCheckpointFlippedByte(t *testing.T) {
	dir := t.TempDir()
	path, _ := saveTrained(t, dir, 400)
	file := filepath.Join(path, "tensors.zst")
	full, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, len(full) / 3, len(full) / 2, len(full) - 1} {
		b := slices.Clone(full)
		b[i] ^= 0x10
		if err := os.WriteFile(file, b, 0o644); err != nil {
			t.Fatal(err)
		}
		s := newCkptModel(4, 2).state()
		wantKind(t, Load(path, &s), KindCorrupt, ErrCorrupt,
			`checkpoint "`+path+`": corrupt: tensors.zst SHA-256 mismatch`)
	}
}

// rewriteManifest applies edit to the manifest of the checkpoint at path.
func rewriteManifest(t *testing.T, path string, edit func(m map[string]any)) {
	t.Helper()
	file := filepath.Join(path, "manifest.json")
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	if b, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadCheckpointTensorChecksum(t *testing.T) {
	dir := t.TempDir()
	path, _ := saveTrained(t, dir, 400)
	file := filepath.Join(path, "tensors.zst")
	zb, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := zr.DecodeAll(zb, nil)
	zr.Close()
	if err != nil {
		t.Fatal(err)
	}

	// Find head.weight's values in the container and flip a bit of one.
	const target = "model/head.weight"
	off := 16
	found := false
	for off < len(raw)-4 {
		nameLen := int(binary.LittleEndian.Uint16(raw[off:]))
		name := string(raw[off+2 : off+2+nameLen])
		rank := int(raw[off+2+nameLen])
		n := 1
		for k := range rank {
			n *= int(binary.LittleEndian.Uint32(raw[off+3+nameLen+4*k:]))
		}
		data := off + 3 + nameLen + 4*rank
		if name == target {
			raw[data+5] ^= 0x01
			found = true
			break
		}
		off = data + 4*n
	}
	if !found {
		t.Fatalf("no %s in the container", target)
	}
	// Fix up the container's CRC, so that only the manifest's per-tensor
	// SHA-256 can tell.
	crc := crc32.Checksum(raw[:len(raw)-4], crc32.MakeTable(crc32.Castagnoli))
	binary.LittleEndian.PutUint32(raw[len(raw)-4:], crc)
	if _, err := nn.ReadTensors(bytes.NewReader(raw)); err != nil {
		t.Fatalf("the doctored container does not read: %v", err)
	}
	zw, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	zb = zw.EncodeAll(raw, nil)
	zw.Close()
	if err := os.WriteFile(file, zb, 0o644); err != nil {
		t.Fatal(err)
	}
	rewriteManifest(t, path, func(m map[string]any) {
		m["tensors_sha256"] = sha256Hex(zb)
		m["tensors_bytes"] = len(zb)
	})
	s := newCkptModel(4, 2).state()
	wantKind(t, Load(path, &s), KindCorrupt, ErrCorrupt, `tensor "model/head.weight": SHA-256 mismatch`)
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func TestLoadCheckpointVersion(t *testing.T) {
	dir := t.TempDir()
	path, _ := saveTrained(t, dir, 400)
	rewriteManifest(t, path, func(m map[string]any) { m["format_version"] = 2 })
	s := newCkptModel(4, 2).state()
	wantKind(t, Load(path, &s), KindVersion, ErrVersion, "format_version 2", "version 1")
	_, err := ReadManifest(path)
	wantKind(t, err, KindVersion, ErrVersion)
}

func TestLoadCheckpointArchitecture(t *testing.T) {
	dir := t.TempDir()
	path, _ := saveTrained(t, dir, 400)

	m := newCkptModel(8, 2)
	before := m.values()
	s := m.state()
	err := Load(path, &s)
	wantKind(t, err, KindArchitecture, ErrArchitecture, "made for another architecture",
		"model/conv.weight: shape [4 3 3 1] in file, [8 3 3 1] in model",
		"model/head.weight: shape [3 4] in file, [3 8] in model",
		"buffer/bn.running_mean", "optim/conv.weight.momentum")
	if strings.Contains(err.Error(), "head.bias") {
		t.Errorf("error %q lists head.bias, which fits", err)
	}
	var ce *Error
	errors.As(err, &ce)
	if n := len(ce.Err.(interface{ Unwrap() []error }).Unwrap()); n != 12 {
		t.Errorf("%d differences listed, want 12: %v", n, err)
	}
	for name, w := range before {
		if !bitsEqual(m.values()[name], w) {
			t.Errorf("%s changed by a failed load", name)
		}
	}
	if s.Step != 0 || s.Metrics != nil {
		t.Errorf("state set by a failed load: step %d, metrics %v", s.Step, s.Metrics)
	}

	// Another optimiser: the names differ.
	m = newCkptModel(4, 2)
	s = m.state()
	s.Optim = nn.NewAdamW(s.Params, 0).State()
	wantKind(t, Load(path, &s), KindArchitecture, ErrArchitecture,
		"optim/adamw.step: in model but not in file", "optim/conv.weight.momentum: in file but not in model")
}

func TestLoadCheckpointMissing(t *testing.T) {
	dir := t.TempDir()
	s := newCkptModel(4, 2).state()
	nowhere := filepath.Join(dir, "ckpt-step-00000001")
	err := Load(nowhere, &s)
	wantKind(t, err, KindMissing, ErrMissing, "no such checkpoint directory")
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error %v does not match fs.ErrNotExist", err)
	}
	for _, file := range []string{"manifest.json", "tensors.zst"} {
		path, _ := saveTrained(t, t.TempDir(), 400)
		if err := os.Remove(filepath.Join(path, file)); err != nil {
			t.Fatal(err)
		}
		err := Load(path, &s)
		wantKind(t, err, KindMissing, ErrMissing, file+" does not exist")
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("error %v does not match fs.ErrNotExist", err)
		}
	}
}

func TestLoadCheckpointBadManifest(t *testing.T) {
	path, _ := saveTrained(t, t.TempDir(), 400)
	good, err := os.ReadFile(filepath.Join(path, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		edit func(m map[string]any)
		kind string
	}{
		"no version":       {func(m map[string]any) { delete(m, "format_version") }, KindCorrupt},
		"string version":   {func(m map[string]any) { m["format_version"] = "one" }, KindCorrupt},
		"unknown field":    {func(m map[string]any) { m["extra"] = 1 }, KindCorrupt},
		"bad tensors hash": {func(m map[string]any) { m["tensors_sha256"] = "xyz" }, KindCorrupt},
		"huge size":        {func(m map[string]any) { m["tensors_bytes"] = 1 << 40 }, KindCorrupt},
		"unprefixed name": {func(m map[string]any) {
			m["tensors"].([]any)[0].(map[string]any)["name"] = "conv.weight"
		}, KindCorrupt},
		"huge shape": {func(m map[string]any) {
			m["tensors"].([]any)[0].(map[string]any)["shape"] = []int{1 << 20, 1 << 20}
		}, KindCorrupt},
		"other shape": {func(m map[string]any) {
			m["tensors"].([]any)[0].(map[string]any)["shape"] = []int{4, 3, 3, 2}
		}, KindCorrupt},
	} {
		t.Run(name, func(t *testing.T) {
			defer os.WriteFile(filepath.Join(path, "manifest.json"), good, 0o644)
			rewriteManifest(t, path, c.edit)
			s := newCkptModel(4, 2).state()
			wantKind(t, Load(path, &s), c.kind, kindSentinels[c.kind])
		})
	}
}

func TestListPruneCheckpoints(t *testing.T) {
	dir := t.TempDir()
	if _, err := List(filepath.Join(dir, "nope")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("listing a missing dir: %v", err)
	}
	_, err := Latest(filepath.Join(dir, "nope"))
	if !errors.Is(err, ErrNone) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("latest of a missing dir: %v", err)
	}
	if _, err := Latest(dir); !errors.Is(err, ErrNone) {
		t.Errorf("latest of an empty dir: %v", err)
	}

	steps := []int{1000, 100, 100000000, 300, 200, 0}
	for _, step := range steps {
		if err := os.Mkdir(filepath.Join(dir, DirName(step)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Not checkpoints.
	for _, name := range []string{".ckpt-step-00000400.partial-123", "ckpt-step-0000050", "ckpt-step-000000060", "ckpt-step-x", "ckpt-step--0000001"} {
		if err := os.Mkdir(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "ckpt-step-00000500"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	names := func(paths []string) []string {
		var ns []string
		for _, p := range paths {
			if filepath.Dir(p) != dir {
				t.Errorf("path %q is not in %q", p, dir)
			}
			ns = append(ns, filepath.Base(p))
		}
		return ns
	}
	paths, err := List(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"ckpt-step-00000000", "ckpt-step-00000100", "ckpt-step-00000200", "ckpt-step-00000300", "ckpt-step-00001000", "ckpt-step-100000000"}
	if got := names(paths); !slices.Equal(got, want) {
		t.Errorf("list %q, want %q", got, want)
	}
	latest, err := Latest(dir)
	if err != nil || latest != filepath.Join(dir, "ckpt-step-100000000") {
		t.Errorf("latest %q, %v", latest, err)
	}

	if err := Prune(dir, -1); err == nil {
		t.Error("keepLast -1: want an error")
	}
	best := filepath.Join(dir, "ckpt-step-00000100")
	if err := Prune(dir, 2, best); err != nil {
		t.Fatal(err)
	}
	paths, _ = List(dir)
	want = []string{"ckpt-step-00000100", "ckpt-step-00001000", "ckpt-step-100000000"}
	if got := names(paths); !slices.Equal(got, want) {
		t.Errorf("after prune: %q, want %q", got, want)
	}
	for _, name := range []string{".ckpt-step-00000400.partial-123", "ckpt-step-00000500"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("prune removed %s: %v", name, err)
		}
	}
	for _, name := range entries(t, dir) {
		if strings.Contains(name, ".deleting-") {
			t.Errorf("prune left %s", name)
		}
	}
	// Pruning again changes nothing; keeping none but the best leaves it.
	if err := Prune(dir, 2, best); err != nil {
		t.Fatal(err)
	}
	if err := Prune(dir, 0, "ckpt-step-00001000"); err != nil {
		t.Fatal(err)
	}
	paths, _ = List(dir)
	if got := names(paths); !slices.Equal(got, []string{"ckpt-step-00001000"}) {
		t.Errorf("after prune to the best: %q", got)
	}
}

func TestSaveCheckpointIgnoresPartial(t *testing.T) {
	dir := t.TempDir()
	// A save interrupted by a crash leaves a partial directory.
	if err := os.Mkdir(filepath.Join(dir, ".ckpt-step-00000400.partial-1"), 0o700); err != nil {
		t.Fatal(err)
	}
	path, _ := saveTrained(t, dir, 400)
	latest, err := Latest(dir)
	if err != nil || latest != path {
		t.Errorf("latest %q, %v; want %q", latest, err, path)
	}
}

func FuzzLoadCheckpointManifest(f *testing.F) {
	dir := f.TempDir()
	m := newCkptModel(2, 1)
	s := m.state()
	s.Config = json.RawMessage(`{"lr":0.1}`)
	s.RNG = map[string][]byte{"train": {1, 2, 3}}
	s.Metrics = map[string]float64{"val_loss": 2}
	path, err := Save(dir, s)
	if err != nil {
		f.Fatal(err)
	}
	good, err := os.ReadFile(filepath.Join(path, "manifest.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add(bytes.Replace(good, []byte(`"format_version": 1`), []byte(`"format_version": 2`), 1))
	f.Add([]byte(`{"format_version": 1, "tensors": [{"name": "model/w", "shape": [2147483647, 2147483647, 2], "sha256": ""}]}`))
	f.Add([]byte(`{"format_version": 1e400}`))
	for _, s := range []string{"", "{}", "null", "[]", `{"format_version": 1}`, `{"format_version": 1} {}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseManifest(b)
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) || kindSentinels[ce.Kind] == nil || m != nil {
				t.Fatalf("error %v (%T), manifest %v", err, err, m)
			}
			return
		}
		if m.FormatVersion != Version {
			t.Fatalf("accepted format_version %d", m.FormatVersion)
		}
		if _, err := containerSize(m.Tensors); err != nil {
			t.Fatalf("accepted bad tensors: %v", err)
		}
		// What was accepted re-encodes to a manifest that is accepted.
		b2, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := parseManifest(b2); err != nil {
			t.Fatalf("re-encoded manifest rejected: %v", err)
		}
	})
}

func ExampleSave() {
	dir, err := os.MkdirTemp("", "run")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	rng, pcg := nn.NewRNG(1)
	head := nn.NewLinear("head", 4, 2, rng)
	opt := nn.NewSGD(head.Params(), 0.9, 0, false)
	rngState, _ := pcg.MarshalBinary()
	path, err := Save(dir, State{
		Step: 400, Pretext: "relpos", Config: json.RawMessage(`{"batch": 8}`),
		RNG:    map[string][]byte{"train": rngState},
		Params: head.Params(), Optim: opt.State(),
	})
	if err != nil {
		panic(err)
	}

	// Later, resuming: find the checkpoint, read its config to build the
	// model, then load into it.
	latest, _ := Latest(dir)
	man, _ := ReadManifest(latest)
	rng2, _ := nn.NewRNG(2)
	head2 := nn.NewLinear("head", 4, 2, rng2)
	s := State{Params: head2.Params(), Optim: nn.NewSGD(head2.Params(), 0.9, 0, false).State()}
	if err := Load(latest, &s); err != nil {
		panic(err)
	}
	fmt.Println(filepath.Base(path), man.Pretext, string(s.Config), s.Step)
	fmt.Println(slices.Equal(head.Weight.Value.Data, head2.Weight.Value.Data))
	// Output:
	// ckpt-step-00000400 relpos {"batch":8} 400
	// true
}

// TestLoadPartial loads the convolution and batch norm alone from the
// checkpoint of the whole model, as an encoder is loaded from a pretext
// model's checkpoint.
func TestLoadPartial(t *testing.T) {
	path, trained := saveTrained(t, t.TempDir(), 7)
	fresh := newCkptModel(4, 2)
	conv, bn := fresh.net.Layers[0], fresh.net.Layers[1].(*nn.BatchNorm)
	part := State{Params: append(conv.Params(), bn.Params()...), Buffers: bn.Buffers()}
	if err := LoadPartial(path, &part); err != nil {
		t.Fatal(err)
	}
	if part.Step != 7 || string(part.Config) != `{"lr":0.1}` {
		t.Errorf("step %d, config %s", part.Step, part.Config)
	}
	want := trained.values()
	for _, p := range part.Params {
		if !bitsEqual(p.Value.Data, want[ModelPrefix+p.Name]) {
			t.Errorf("%s not loaded", p.Name)
		}
	}
	for _, p := range part.Buffers {
		if !bitsEqual(p.Value.Data, want[BufferPrefix+p.Name]) {
			t.Errorf("buffer %s not loaded", p.Name)
		}
	}
	if bitsEqual(fresh.net.Layers[4].Params()[0].Value.Data, want[ModelPrefix+"head.weight"]) {
		t.Error("the head, not asked for, was loaded")
	}

	// A part the checkpoint does not hold, or holds in another shape.
	rng, _ := nn.NewRNG(3)
	other := nn.NewConv2D("conv", 1, 5, 3, 1, 1, true, rng)
	extra := nn.NewLinear("tail", 2, 2, rng)
	for _, ps := range [][]*nn.Param{other.Params(), extra.Params()} {
		s := State{Params: ps}
		before := slices.Clone(ps[0].Value.Data)
		err := LoadPartial(path, &s)
		wantKind(t, err, KindArchitecture, ErrArchitecture)
		if !bitsEqual(ps[0].Value.Data, before) {
			t.Error("a failed partial load changed a tensor")
		}
	}
	if err := LoadPartial(path, &State{Optim: fresh.opt.State()}); err == nil {
		t.Error("a partial load took optimiser state")
	}
}
