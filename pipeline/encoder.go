package pipeline

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/patchwise-ml/patchwise/augment"
	"github.com/patchwise-ml/patchwise/data"
	"github.com/patchwise-ml/patchwise/nn"
	"github.com/patchwise-ml/patchwise/pipeline/checkpoint"
	"github.com/patchwise-ml/patchwise/pretext"
)

// FrozenEncoder is an encoder ready for feature extraction, with what a
// probe needs to feed it and to name it.
type FrozenEncoder struct {
	Encoder *pretext.Encoder
	// Size is the encoder's input side in pixels: images are resized to
	// Size×Size, as in pretraining.
	Size int
	// ImageSide is the side of the images it was trained on (0 when not
	// known): a dataset of another side is refused.
	ImageSide int
	// Normalize is the per-image normalisation applied after resizing, as
	// the pretext normalised its inputs (pretext.Spec.Normalize).
	Normalize string
	// Name says where the weights come from: a checkpoint path or
	// "random (seed S)".
	Name string
	// Hash is the SHA-256 of the encoder's tensors (EncoderHash).
	Hash string
	// Pretext, Step and DatasetID describe the run of a checkpoint.
	Pretext   string
	Step      int
	DatasetID string
}

// LoadEncoder reads the encoder of any registered pretext's model from the
// checkpoint at path (a ckpt-step-… directory, or a training directory:
// its latest checkpoint), checking every checksum. It builds the model the
// checkpoint's config describes and loads its encoder (Model.Encoder)
// alone: the rest of the model (heads, decoders) and the optimiser state
// are not read into it.
//
// A probe runs the encoder in evaluation mode, so its batch norms use the
// running statistics saved under the encoder's names: those of the
// pretext's training inputs, resized to Size. For the autoencoders (dae-*
// included: pretext.Denoising keeps the statistics of clean inputs there,
// those of corrupted ones apart) and for supervised these describe the
// clean whole images a probe feeds. For pretexts that train on crops or
// tiles (relpos, jigsaw) they describe crops resized to the encoder's
// input side and normalised; the probe feeds whole images normalised the
// same way (Normalize), which the encoder's batch norms see with somewhat
// different statistics.
func LoadEncoder(path string) (*FrozenEncoder, error) {
	ckpt, err := checkpointOf(path)
	if err != nil {
		return nil, err
	}
	m, err := checkpoint.ReadManifest(ckpt)
	if err != nil {
		return nil, err
	}
	var cfg PretrainConfig
	if err := json.Unmarshal(m.Config, &cfg); err != nil {
		return nil, &checkpoint.Error{Path: ckpt, Kind: checkpoint.KindCorrupt, Msg: "its config is not a pretraining config", Err: err}
	}
	spec, err := pretext.Lookup(m.Pretext)
	if err != nil {
		return nil, fmt.Errorf("pipeline: checkpoint %q was made by a pretext this build does not know: %w", ckpt, err)
	}
	side := cmp.Or(cfg.ImageSide, cfg.Size)
	if cfg.Size < 1 || cfg.Encoder.Channels == 0 {
		return nil, &checkpoint.Error{Path: ckpt, Kind: checkpoint.KindCorrupt,
			Msg: fmt.Sprintf("its config does not describe an encoder (channels %d, widths %v, size %d)", cfg.Encoder.Channels, cfg.Encoder.Widths, cfg.Size)}
	}
	pc, err := spec.Resolve(cfg.Config, side, cfg.Encoder.Channels)
	if err != nil {
		return nil, &checkpoint.Error{Path: ckpt, Kind: checkpoint.KindCorrupt, Msg: "its config does not describe a model", Err: err}
	}
	rng, _ := nn.NewRNG(0)
	model, err := spec.New(pc, rng)
	if err != nil {
		return nil, &checkpoint.Error{Path: ckpt, Kind: checkpoint.KindCorrupt, Msg: "its config does not build its model", Err: err}
	}
	enc := model.Encoder()
	if err := checkpoint.LoadPartial(ckpt, &checkpoint.State{Params: enc.Params(), Buffers: enc.Buffers()}); err != nil {
		return nil, err
	}
	return &FrozenEncoder{Encoder: enc, Size: cfg.Size, ImageSide: cfg.ImageSide, Normalize: spec.InputNorm(cfg.Config),
		Name: ckpt, Hash: EncoderHash(enc), Pretext: m.Pretext, Step: m.Step, DatasetID: m.DatasetID}, nil
}

// checkpointOf returns path if it is a checkpoint (it holds a
// manifest.json), or the latest checkpoint of the training directory path.
func checkpointOf(path string) (string, error) {
	if _, err := os.Stat(filepath.Join(path, checkpoint.ManifestFile)); err == nil {
		return path, nil
	}
	if fi, err := os.Stat(path); err != nil || !fi.IsDir() {
		return path, nil // checkpoint.ReadManifest describes what is wrong
	}
	ckpt, err := checkpoint.Latest(path)
	if errors.Is(err, checkpoint.ErrNone) {
		return "", &checkpoint.Error{Path: path, Kind: checkpoint.KindMissing, Err: err,
			Msg: "neither a checkpoint (no " + checkpoint.ManifestFile + ") nor a training directory holding checkpoints"}
	}
	return ckpt, err
}

// RandomEncoder returns the encoder of configuration cfg initialised from
// seed as pretraining initialises it (Kaiming normal weights, batch norm at
// identity: running mean 0, variance 1), for the random-encoder baseline,
// as if pretrained on images of side imageSide: its input side is size, or
// when size is 0 the one Pretrain would choose (EncoderConfig.InputSize).
func RandomEncoder(cfg pretext.EncoderConfig, imageSide, size int, seed uint64) (*FrozenEncoder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if size == 0 {
		size = cfg.InputSize(imageSide)
	}
	if size < cfg.MinSize() {
		return nil, fmt.Errorf("pipeline: random encoder: input side %d is too small for %d blocks (at least %d)", size, len(cfg.Widths), cfg.MinSize())
	}
	rng, _ := nn.NewRNG(seed)
	enc := pretext.NewEncoder("encoder", cfg, rng)
	return &FrozenEncoder{Encoder: enc, Size: size, ImageSide: imageSide,
		Name: fmt.Sprintf("random (seed %d)", seed), Hash: EncoderHash(enc)}, nil
}

// EncoderHash is the hex SHA-256 of an encoder's parameters and buffers:
// for each, in order, its name, its shape and its values as little-endian
// float32. Two encoders with the same hash compute the same features.
func EncoderHash(e *pretext.Encoder) string {
	h := sha256.New()
	var b [8]byte
	for _, p := range slices.Concat(e.Params(), e.Buffers()) {
		h.Write([]byte(p.Name))
		h.Write([]byte{0})
		for _, d := range p.Value.Shape {
			binary.LittleEndian.PutUint64(b[:], uint64(d))
			h.Write(b[:])
		}
		checkpoint.HashFloats(h, p.Value.Data)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// checkDataset returns an error if ds's images cannot be fed to fe.
func (fe *FrozenEncoder) checkDataset(ds *data.Dataset) error {
	m := ds.Manifest()
	var errs []string
	if c := fe.Encoder.Config.Channels; m.Channels != c {
		errs = append(errs, fmt.Sprintf("the encoder takes %d-channel images but the dataset's have %d (ingest it again with --channels %d)", c, m.Channels, c))
	}
	if fe.ImageSide != 0 && m.Size != fe.ImageSide {
		errs = append(errs, fmt.Sprintf("the encoder was trained on %d×%d images but the dataset's are %d×%d (ingest it again with --size %d)", fe.ImageSide, fe.ImageSide, m.Size, m.Size, fe.ImageSide))
	}
	if len(errs) > 0 {
		return fmt.Errorf("pipeline: probe %s with dataset %q: %s", fe.Name, ds.Dir(), strings.Join(errs, "; "))
	}
	return nil
}

// featurizer feeds a frozen encoder: the dataset's images, resized to the
// encoder's side and normalised as in pretraining, give the features of
// block stage average-pooled to pooled×pooled.
type featurizer struct {
	fe            *FrozenEncoder
	stage, pooled int
	in            *nn.Tensor
}

// Features maps x [N, H, W, C] in [0, 1] to [N, pooled²·width(stage)].
func (f *featurizer) Features(x *nn.Tensor) *nn.Tensor {
	n, h, w, c := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	s := f.fe.Size
	if f.in == nil || f.in.Shape[0] != n || f.in.Shape[1] != s {
		f.in = nn.NewTensor(n, s, s, c)
	}
	for i := range n {
		src := augment.Patch{Pix: x.Data[i*h*w*c : (i+1)*h*w*c], W: w, H: h, C: c}
		dst := augment.Patch{Pix: f.in.Data[i*s*s*c : (i+1)*s*s*c], W: s, H: s, C: c}
		augment.Resize(dst, src)
		switch f.fe.Normalize {
		case augment.NormMean:
			augment.SubtractMean(dst)
		case augment.NormStandardize:
			augment.Standardize(dst)
		}
	}
	return f.fe.Encoder.StageFeatures(f.in, f.stage, f.pooled)
}
