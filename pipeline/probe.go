package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/patchwise-ml/patchwise/data"
	"github.com/patchwise-ml/patchwise/probe"
)

// ProbeConfig is the probe stage's configuration; its zero value means
// the defaults of docs/design.md §6.
type ProbeConfig struct {
	// Stage is the encoder block (1-based) whose output is probed; 0 means
	// the last block.
	Stage int `json:"stage,omitempty"`
	// Pooled is the side of the average-pooling grid of a block before the
	// last (the features are Pooled²·width values); default 2. The last
	// block is always globally average-pooled.
	Pooled int `json:"pooled,omitempty"`
	// Batch is the number of images per forward pass; default 256.
	Batch int `json:"batch,omitempty"`
	// Protocol is the linear probe's and the k-NN's settings.
	Protocol probe.Config `json:"protocol"`
}

// DefaultPooled is ProbeConfig.Pooled's default.
const DefaultPooled = 2

// resolve fills in the defaults for an encoder of the given depth
// (0 for raw pixels, which have no stages).
func (c ProbeConfig) resolve(depth int) (ProbeConfig, error) {
	var errs []error
	if c.Stage < 0 || depth > 0 && c.Stage > depth || depth == 0 && c.Stage != 0 {
		if depth == 0 {
			errs = append(errs, fmt.Errorf("pipeline: probe: stage %d: raw pixels have no stages", c.Stage))
		} else {
			errs = append(errs, fmt.Errorf("pipeline: probe: stage %d: the encoder has blocks 1 to %d", c.Stage, depth))
		}
	}
	if c.Pooled < 0 {
		errs = append(errs, fmt.Errorf("pipeline: probe: pooled side %d is negative", c.Pooled))
	}
	if c.Batch < 0 {
		errs = append(errs, fmt.Errorf("pipeline: probe: batch %d is negative", c.Batch))
	}
	if err := c.Protocol.Validate(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return c, fmt.Errorf("%w:\n%w", ErrInvalidConfig, errors.Join(errs...))
	}
	if depth > 0 {
		if c.Stage == 0 {
			c.Stage = depth
		}
		switch {
		case c.Stage == depth:
			c.Pooled = 1
		case c.Pooled == 0:
			c.Pooled = DefaultPooled
		}
	}
	if c.Batch == 0 {
		c.Batch = 256
	}
	return c, nil
}

// ProbeRequest says what to probe on which data.
type ProbeRequest struct {
	// Encoder is the frozen encoder (LoadEncoder, RandomEncoder); nil
	// probes the raw pixels.
	Encoder *FrozenEncoder
	// Train's "train" split fits the probes; Test's "test" split (or its
	// "val" split when it has no "test") scores them. They are often the
	// same dataset.
	Train, Test *data.Dataset
	Config      ProbeConfig
	// CacheDir holds the features computed once per (encoder, dataset,
	// split, stage); "" computes them without caching.
	CacheDir string
}

// Probe extracts the features of the training and test images and runs
// the linear and k-NN probes (probe.Evaluate). The result's protocol names
// the stage, the pooling, the datasets and the encoder's hash ("pixels"
// for raw pixels); its Classes are the datasets' class names, which must
// be the same in both.
func Probe(ctx context.Context, req ProbeRequest, p Progress) (*probe.Result, error) {
	if p == nil {
		p = NoProgress{}
	}
	depth := 0
	if req.Encoder != nil {
		depth = len(req.Encoder.Encoder.Blocks)
	}
	cfg, err := req.Config.resolve(depth)
	if err != nil {
		return nil, err
	}
	testSplit, err := req.check()
	if err != nil {
		return nil, err
	}
	encHash := "pixels"
	if req.Encoder != nil {
		encHash = req.Encoder.Hash
	}
	train, err := req.features(ctx, req.Train, data.Train, cfg.Stage, cfg.Pooled, cfg.Batch, p)
	if err != nil {
		return nil, err
	}
	test, err := req.features(ctx, req.Test, testSplit, cfg.Stage, cfg.Pooled, cfg.Batch, p)
	if err != nil {
		return nil, err
	}
	res, err := probe.Evaluate(ctx, train, test, cfg.Protocol, p)
	if err != nil {
		return nil, fmt.Errorf("pipeline: probe: %w", err)
	}
	res.Protocol.Stage, res.Protocol.Pooled = cfg.Stage, cfg.Pooled
	res.Protocol.Train, res.Protocol.Test, res.Protocol.TestSplit = req.Train.ID(), req.Test.ID(), testSplit
	res.Protocol.Encoder = encHash
	res.Classes = req.Train.Manifest().Classes
	return res, nil
}

// check returns an error if the request's datasets cannot be probed, or
// its encoder cannot take their images; else the split of req.Test that
// scores the probes: "test", or "val" when it has no test split.
func (req ProbeRequest) check() (string, error) {
	for _, ds := range []*data.Dataset{req.Train, req.Test} {
		m := ds.Manifest()
		if len(m.Classes) < 2 {
			return "", fmt.Errorf("pipeline: probe: dataset %q has no labels (%d classes): a probe needs labelled images", ds.Dir(), len(m.Classes))
		}
	}
	if req.Train.Len(data.Train) == 0 {
		return "", fmt.Errorf("pipeline: probe: dataset %q has no %q split", req.Train.Dir(), data.Train)
	}
	testSplit := data.Test
	if req.Test.Len(data.Test) == 0 {
		testSplit = data.Val
	}
	if req.Test.Len(testSplit) == 0 {
		return "", fmt.Errorf("pipeline: probe: dataset %q has neither a %q nor a %q split to score the probes on (ingest it with --val-fraction)", req.Test.Dir(), data.Test, data.Val)
	}
	a, b := req.Train.Manifest(), req.Test.Manifest()
	if len(a.Classes) != len(b.Classes) || a.Size != b.Size || a.Channels != b.Channels {
		return "", fmt.Errorf("pipeline: probe: training dataset %q (%d classes, %d×%d×%d) and test dataset %q (%d classes, %d×%d×%d) do not match",
			req.Train.Dir(), len(a.Classes), a.Size, a.Size, a.Channels, req.Test.Dir(), len(b.Classes), b.Size, b.Size, b.Channels)
	}
	if !slices.Equal(a.Classes, b.Classes) {
		return "", fmt.Errorf("pipeline: probe: training dataset %q and test dataset %q name their classes differently (%s and %s): a label must mean the same class in both",
			req.Train.Dir(), req.Test.Dir(), strings.Join(a.Classes, ", "), strings.Join(b.Classes, ", "))
	}
	if req.Encoder != nil {
		if err := req.Encoder.checkDataset(req.Train); err != nil {
			return "", err
		}
	}
	return testSplit, nil
}

// features returns the features of split of ds: the raw pixels when the
// request has no encoder, else block stage of its encoder average-pooled
// to pooled×pooled, computed batch images at a time; cached in
// req.CacheDir when it is set.
func (req ProbeRequest) features(ctx context.Context, ds *data.Dataset, split string, stage, pooled, batch int, p Progress) (*probe.Features, error) {
	var f probe.Featurizer = probe.Pixels{}
	encHash := "pixels"
	if fe := req.Encoder; fe != nil {
		f = &featurizer{fe: fe, stage: stage, pooled: pooled}
		encHash = fe.Hash
	} else {
		stage, pooled = 0, 0
	}
	compute := func() (*probe.Features, error) {
		return probe.Extract(ctx, ds, split, f, batch, p)
	}
	if req.CacheDir == "" {
		return compute()
	}
	key := probe.CacheKey{Encoder: encHash, Dataset: ds.ID(), Split: split, Stage: stage, Pooled: pooled}
	x, _, err := probe.Cached(req.CacheDir, key, compute)
	return x, err
}
