package pretext

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
)

// Names lists the pretext models that New builds.
var Names = []string{"relpos", "ae-mirrored", "ae-linear", "ae-tied", "dae-mirrored", "dae-linear", "dae-tied", "supervised"}

// ErrUnknown is wrapped by the error for a pretext name not in Names.
var ErrUnknown = errors.New("pretext: unknown pretext")

// DefaultHidden is the relative-position head's default width.
const DefaultHidden = 256

// Config chooses the shape of a pretext model. Its zero value is not
// usable as is: Size is required, and Classes for "supervised".
type Config struct {
	Encoder EncoderConfig
	// Size is the side of the encoder's square input (the crop side for
	// relpos), in pixels.
	Size int
	// Classes is the number of labels, for "supervised"; at least 2.
	Classes int
	// Hidden is the relpos head's width; default DefaultHidden.
	Hidden int
	// Corruption is the input corruption of the "dae-*" models.
	Corruption Corruption
}

func (c Config) withDefaults() Config {
	c.Encoder = c.Encoder.withDefaults()
	if c.Hidden == 0 {
		c.Hidden = DefaultHidden
	}
	return c
}

// Validate reports every problem with the configuration of the pretext
// called name at once: an unknown name (wrapping ErrUnknown), an invalid
// encoder, an image size too small for the encoder's depth
// (EncoderConfig.MinSize) or, for the convolutional decoders (mirrored and
// tied), not a multiple of 2^blocks, fewer than 2 classes for
// "supervised", a negative hidden width for "relpos", an invalid
// corruption for "dae-*". Settings the named pretext does not use are not
// checked.
func (c Config) Validate(name string) error {
	var errs []error
	if !slices.Contains(Names, name) {
		errs = append(errs, fmt.Errorf("%w %q (known: %s)", ErrUnknown, name, strings.Join(Names, ", ")))
	}
	if err := c.Encoder.Validate(); err != nil {
		errs = append(errs, err)
	}
	blocks := len(c.Encoder.withDefaults().Widths)
	least := c.Encoder.MinSize()
	switch {
	case c.Size < 1:
		errs = append(errs, fmt.Errorf("pretext: image size %d must be positive", c.Size))
	case c.Size < least:
		errs = append(errs, fmt.Errorf("pretext: image size %d is too small for an encoder of %d blocks: need at least %d", c.Size, blocks, least))
	case strings.HasSuffix(name, "-mirrored") || strings.HasSuffix(name, "-tied"):
		if c.Size%least != 0 {
			errs = append(errs, fmt.Errorf("pretext: %s reconstructs only sides that are multiples of %d (2^%d blocks), got %d", name, least, blocks, c.Size))
		}
	}
	switch {
	case name == "supervised" && c.Classes < 2:
		errs = append(errs, fmt.Errorf("pretext: supervised needs at least 2 classes, got %d", c.Classes))
	case name == "relpos" && c.Hidden < 0:
		errs = append(errs, fmt.Errorf("pretext: relpos hidden width %d is negative", c.Hidden))
	case strings.HasPrefix(name, "dae-"):
		if err := c.Corruption.Validate(c.Size); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// New returns the pretext model called name (one of Names), with its
// parameters drawn from rng:
//   - "relpos": RelPos with Hidden units;
//   - "ae-mirrored", "ae-linear", "ae-tied": MirroredAE, LinearAE (for
//     Size×Size inputs), TiedAE;
//   - "dae-mirrored", "dae-linear", "dae-tied": the same wrapped in
//     Denoising with cfg.Corruption;
//   - "supervised": Classifier over Classes labels.
//
// It returns the error of cfg.Validate(name), if any.
func New(name string, cfg Config, rng *rand.Rand) (Model, error) {
	if err := cfg.Validate(name); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if base, ok := strings.CutPrefix(name, "dae-"); ok {
		ae, err := New("ae-"+base, cfg, rng)
		if err != nil {
			return nil, err
		}
		return NewDenoising(ae, cfg.Corruption), nil
	}
	switch name {
	case "relpos":
		return NewRelPos(cfg.Encoder, cfg.Hidden, rng), nil
	case "ae-mirrored":
		return NewMirroredAE(cfg.Encoder, rng), nil
	case "ae-linear":
		return NewLinearAE(cfg.Encoder, cfg.Size, rng), nil
	case "ae-tied":
		return NewTiedAE(cfg.Encoder, rng), nil
	case "supervised":
		return NewClassifier(cfg.Encoder, cfg.Classes, rng), nil
	}
	panic("pretext: New: " + name + " is in Names but not built") // unreachable after Validate
}

// EncoderOf returns the shared encoder of a model from this package (the
// part to checkpoint separately, probe and export), or nil for any other
// Model.
func EncoderOf(m Model) *Encoder {
	if e, ok := m.(interface{ encoder() *Encoder }); ok {
		return e.encoder()
	}
	return nil
}

func (m *Classifier) encoder() *Encoder { return m.Encoder }
func (m *MirroredAE) encoder() *Encoder { return m.Encoder }
func (m *RelPos) encoder() *Encoder     { return m.Encoder }
