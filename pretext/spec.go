package pretext

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/patchwise-ml/patchwise/augment"
)

// Spec describes a pretext task completely: what its samples are made of,
// how its model is built, what it reports and how its encoder's inputs
// are prepared. The pipeline trains, validates, checkpoints, exports and
// probes any registered Spec without knowing its name; adding a pretext is
// one Spec and, where needed, one augment.Sampler.
type Spec struct {
	// Name is the registry key and the name users type ("relpos").
	Name string
	// Summary says in one line what the model learns to do.
	Summary string
	// Reference is the work the pretext follows ("Doersch, Gupta & Efros 2015").
	Reference string

	// Default puts the pretext in the default comparison.
	Default bool
	// Labels says the model trains on the dataset's classes (the
	// supervised baseline): Config.Classes must be at least 2.
	Labels bool
	// MeanImage says New wants Config.MeanImage: the mean, over the
	// training split, of the first view of the evaluation sampler's
	// samples (for a reconstruction error's baseline).
	MeanImage bool

	// Optimizer and LR are the pretext's default optimiser ("sgd" or
	// "adamw") and peak learning rate; empty and 0 leave the caller's
	// defaults.
	Optimizer string
	LR        float64

	// Metrics lists what Step reports in Metrics.Values, beyond the loss.
	Metrics []Metric

	// Prepare, if not nil, fills in the pretext's own defaults in c for
	// images of side pixels, after the shared ones (encoder, Size).
	Prepare func(c *Config, side int)
	// Check, if not nil, reports every problem with the pretext's own
	// settings in c for images of side pixels; the shared ones and the
	// sampler's are checked by Resolve.
	Check func(c Config, side int) error
	// Sampler returns the sampler of the pretext's samples from side×side
	// images of ch channels: training samples with random draws when
	// train is true, else the evaluation samples of validation.
	Sampler func(c Config, side, ch int, train bool) (augment.Sampler, error)
	// New builds the model from a resolved c, its parameters drawn from rng.
	New func(c Config, rng *rand.Rand) (Model, error)
	// Normalize, if not nil, returns the per-image normalisation
	// (augment.NormMean or augment.NormStandardize) of the encoder's
	// inputs in training, which a probe and an export apply too; nil or
	// "" means none.
	Normalize func(c Config) string
}

// Metric describes a value a model's Step reports in Metrics.Values.
type Metric struct {
	Key   string // the key in Metrics.Values and in metrics logs ("acc"; validations log "val_acc")
	Title string // what it is, for reports ("pretext accuracy")
	// Percent says the value is a fraction shown as a percentage.
	Percent bool
	// Baseline, if not empty, is the key of another reported metric that
	// this one is read against ("mse_mean_image" for "mse").
	Baseline string
	// Chance, if not nil, is the value a model that learnt nothing gets
	// (1/8 for 8-way classification).
	Chance func(c Config) float64
	// EvalOnly says the value is reported by evaluation steps only.
	EvalOnly bool
}

// ErrUnknown is wrapped by the error for a pretext name that is not
// registered.
var ErrUnknown = errors.New("pretext: unknown pretext")

var registry []Spec

// Register adds s to the registry. It panics (a programming error) if s
// has no Name, Sampler or New, or its name is taken.
func Register(s Spec) {
	switch {
	case s.Name == "" || s.Sampler == nil || s.New == nil:
		panic(fmt.Sprintf("pretext: Register: spec %q lacks a name, a sampler or a constructor", s.Name))
	case slices.ContainsFunc(registry, func(r Spec) bool { return r.Name == s.Name }):
		panic(fmt.Sprintf("pretext: Register: %q is already registered", s.Name))
	}
	registry = append(registry, s)
}

// Lookup returns the registered Spec called name, or an error wrapping
// ErrUnknown that lists the known names.
func Lookup(name string) (Spec, error) {
	for _, s := range registry {
		if s.Name == name {
			return s, nil
		}
	}
	return Spec{}, fmt.Errorf("%w %q (known: %s)", ErrUnknown, name, strings.Join(Names(), ", "))
}

// Names returns the registered pretexts' names, in registration order.
func Names() []string {
	names := make([]string, len(registry))
	for i, s := range registry {
		names[i] = s.Name
	}
	return names
}

// DefaultNames returns the names of the pretexts of the default
// comparison (Spec.Default), in registration order.
func DefaultNames() []string {
	var names []string
	for _, s := range registry {
		if s.Default {
			names = append(names, s.Name)
		}
	}
	return names
}

// Resolve fills in the defaults of c for the pretext s on side×side
// images of ch channels — the encoder's channels and widths, its input
// side (EncoderConfig.InputSize), then the pretext's own (Prepare) — and
// returns the resolved config or every problem at once: an invalid
// encoder, an input side too small for it, the pretext's own checks, fewer
// than two classes for a pretext that trains on labels, and whatever its
// sampler refuses (a crop geometry that does not fit, say).
func (s Spec) Resolve(c Config, side, ch int) (Config, error) {
	var errs []error
	if c.Encoder.Channels == 0 {
		c.Encoder.Channels = ch
	} else if c.Encoder.Channels != ch {
		errs = append(errs, fmt.Errorf("pretext: encoder channels %d, but the images have %d", c.Encoder.Channels, ch))
	}
	if c.Encoder.Arch == ArchSmall {
		c.Encoder.Arch = "" // the default, as the reference encoder's configs have always said it
	}
	if len(c.Encoder.Widths) == 0 {
		c.Encoder.Widths = slices.Clone(c.Encoder.withDefaults().Widths)
	}
	if err := c.Encoder.Validate(); err != nil {
		return c, errors.Join(append(errs, err)...)
	}
	if c.Size == 0 {
		c.Size = c.Encoder.InputSize(side)
	}
	if c.Size < 0 {
		errs = append(errs, fmt.Errorf("pretext: input size %d is negative", c.Size))
	}
	if s.Prepare != nil {
		s.Prepare(&c, side)
	}
	if least := c.Encoder.MinSize(); c.Size > 0 && c.Size < least {
		errs = append(errs, fmt.Errorf("pretext: %s: input size %d is too small for an encoder of %d blocks: need at least %d",
			s.Name, c.Size, len(c.Encoder.Widths), least))
	}
	if s.Labels && c.Classes < 2 {
		errs = append(errs, fmt.Errorf("pretext: %s trains on the dataset's labels and needs at least 2 classes, got %d", s.Name, c.Classes))
	}
	if s.Check != nil {
		if err := s.Check(c, side); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		if _, err := s.Sampler(c, side, ch, true); err != nil {
			errs = append(errs, err)
		}
	}
	return c, errors.Join(errs...)
}

// InputNorm returns the per-image normalisation of the encoder's inputs
// for the resolved config c (Spec.Normalize), "" for none.
func (s Spec) InputNorm(c Config) string {
	if s.Normalize == nil {
		return ""
	}
	return s.Normalize(c)
}

// checkViewSize reports a view side (0: the default) that is negative or
// smaller than the encoder enc takes; what names the setting in the error.
func checkViewSize(what string, size int, enc EncoderConfig) error {
	if least := enc.MinSize(); size < 0 {
		return fmt.Errorf("pretext: %s %d is negative", what, size)
	} else if size > 0 && size < least {
		return fmt.Errorf("pretext: %s %d is too small for an encoder of %d blocks: need at least %d",
			what, size, len(enc.Widths), least)
	}
	return nil
}
