package data

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
)

// Progress receives reports from long-running work; the command line
// implements it with progress bars. Calls come from one goroutine at a time.
type Progress interface {
	Start(what string, total int) // total < 0 when unknown
	Add(n int)
	Done()
}

// Formats lists the source formats OpenSource knows, "auto" first.
var Formats = []string{"auto", "folder", "idx", "cifar10", "cifar100", "stl10"}

// OpenSource opens path as an ingest source of the given format, or with
// "auto" (or "") recognises it: a folder holding the MNIST-family IDX files
// is idx, one with data_batch_1.bin is cifar10, one with train.bin and
// test.bin is cifar100, one with train_X.bin or unlabeled_X.bin is stl10,
// and any other folder is an image folder.
func OpenSource(path, format string) (Source, error) {
	if format == "" || format == "auto" {
		format = detectFormat(path)
	}
	switch format {
	case "folder":
		return NewFolder(path, false)
	case "idx":
		return NewIDX(path)
	case "cifar10":
		return NewCIFAR10(path)
	case "cifar100":
		return NewCIFAR100(path)
	case "stl10":
		return NewSTL10(path)
	}
	return nil, fmt.Errorf("data: unknown source format %q (known: %s)", format, strings.Join(Formats, ", "))
}

func detectFormat(dir string) string {
	// The binary datasets may also sit in the folder their archive unpacks to.
	has := func(names ...string) bool {
		for _, n := range names {
			for _, sub := range []string{"", "cifar-10-batches-bin", "cifar-100-binary", "stl10_binary"} {
				if _, err := os.Stat(filepath.Join(dir, sub, n)); err == nil {
					return true
				}
			}
		}
		return false
	}
	switch {
	case has("train-images-idx3-ubyte", "train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte", "t10k-images-idx3-ubyte.gz"):
		return "idx"
	case has("data_batch_1.bin"):
		return "cifar10"
	case has("train.bin") && has("test.bin"):
		return "cifar100"
	case has("train_X.bin", "unlabeled_X.bin"):
		return "stl10"
	}
	return "folder"
}

// IngestConfig describes one ingest. Its zero value (with Sources and Out
// set) means the defaults given on each field.
type IngestConfig struct {
	Inputs     []string   // source paths; their classes must agree
	Format     string     // source format (see Formats); default "auto"
	Out        string     // dataset directory to create; must not exist
	Preprocess Preprocess // image size, channels and resize policy
	// ValFraction of the training records (0 ≤ f < 1) go to a validation
	// split, chosen by a hash of the seed and each record's origin: the
	// same records for the same seed, whatever the order or worker count.
	ValFraction float64
	Seed        uint64
	Strict      bool // any bad input fails the ingest, and nothing is written
	Workers     int  // decoding goroutines; default GOMAXPROCS
	// Unlabelled drops the sources' labels: every record is unlabelled,
	// and an image folder is walked whole, its subfolders not classes (a
	// tree of photos sorted into folders by where they came from).
	Unlabelled bool
	// Classes names the classes, in label order, instead of the names the
	// sources have of their own or from a ClassesFile beside an input;
	// ClassesFile reads them from a file (see ParseClassNames) instead.
	// Set at most one; either must give as many names as the sources have
	// classes.
	Classes     []string
	ClassesFile string
}

// Validate reports every problem with the configuration at once.
func (c IngestConfig) Validate() error {
	var errs []error
	if len(c.Inputs) == 0 {
		errs = append(errs, errors.New("data: ingest: no inputs"))
	}
	if c.Format != "" && !slices.Contains(Formats, c.Format) {
		errs = append(errs, fmt.Errorf("data: ingest: unknown format %q (known: %s)", c.Format, strings.Join(Formats, ", ")))
	}
	if c.Out == "" {
		errs = append(errs, errors.New("data: ingest: no output directory"))
	}
	if !(c.ValFraction >= 0 && c.ValFraction < 1) {
		errs = append(errs, fmt.Errorf("data: ingest: validation fraction must be in [0, 1), got %v", c.ValFraction))
	}
	if c.Workers < 0 {
		errs = append(errs, fmt.Errorf("data: ingest: workers must not be negative, got %d", c.Workers))
	}
	if c.Classes != nil && c.ClassesFile != "" {
		errs = append(errs, errors.New("data: ingest: class names given both as a list and as a file: give one"))
	}
	if c.Unlabelled && (c.Classes != nil || c.ClassesFile != "") {
		errs = append(errs, errors.New("data: ingest: class names given for an unlabelled ingest"))
	}
	if c.Classes != nil {
		if err := CheckClassNames(c.Classes); err != nil {
			errs = append(errs, err)
		}
	}
	if err := c.Preprocess.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// WithDefaults returns p with its zero fields set to their defaults.
func (p Preprocess) WithDefaults() Preprocess {
	if p.Size == 0 {
		p.Size = 32
	}
	if p.Channels == 0 {
		p.Channels = 3
	}
	p.Crops = p.Crops.withDefaults()
	if p.Resize == "" {
		p.Resize = ResizeCrop
		if p.Crops.N > 0 {
			p.Resize = ResizeStretch
		}
	}
	if p.MaxPixels == 0 {
		p.MaxPixels = 100_000_000
	}
	return p
}

// Validate reports every problem with the settings at once.
func (p Preprocess) Validate() error {
	p = p.WithDefaults()
	var errs []error
	if p.Size < 1 || p.Size > 4096 {
		errs = append(errs, fmt.Errorf("data: image size must be in [1, 4096], got %d", p.Size))
	}
	if p.Channels != 1 && p.Channels != 3 {
		errs = append(errs, fmt.Errorf("data: channels must be 1 or 3, got %d", p.Channels))
	}
	if p.Resize != ResizeCrop && p.Resize != ResizePad && p.Resize != ResizeStretch {
		errs = append(errs, fmt.Errorf("data: resize policy must be %s, %s or %s, got %q", ResizeCrop, ResizePad, ResizeStretch, p.Resize))
	}
	if p.MaxPixels < 1 {
		errs = append(errs, fmt.Errorf("data: max pixels must be positive, got %d", p.MaxPixels))
	}
	errs = append(errs, p.Crops.validate()...)
	if p.Crops.N > 0 && p.Resize != ResizeStretch {
		errs = append(errs, fmt.Errorf("data: crops are stretched to a square (resize %s), not resized by %q: draw square crops with the ratio range [1, 1]", ResizeStretch, p.Resize))
	}
	return errors.Join(errs...)
}

// Skip is an input that ingest could not use.
type Skip struct {
	// Path is the file on disk: the input folder joined with Origin.
	Path string `json:"path"`
	// Origin is the input's name within its source, as a record's
	// Origin would have been.
	Origin string `json:"origin"`
	// Reason says what is wrong with it, without repeating the path.
	Reason string `json:"reason"`
}

// IngestReportFile is the name of the report Ingest writes into the
// dataset directory, next to manifest.json.
const IngestReportFile = "ingest-report.json"

// IngestReportVersion is the format_version of the ingest report this
// build writes and reads.
const IngestReportVersion = 1

// IngestReport says what an ingest did: every input it skipped and why,
// every group of records with identical pixels, and the counts.
//
// Ingest returns it and writes it as IngestReportFile into the dataset
// directory, in the same temporary directory as the shards and the
// manifest, so that it appears with the dataset, complete, or not at
// all; an ingest without problems writes one too, with zero counts and
// empty lists. The report is not part of the manifest: it names the
// dataset by its ID instead, so that the dataset ID depends on the records
// and settings only, never on how the messages of skipped inputs are
// worded. The manifest keeps the skipped and duplicate counts, which the
// report must agree with.
type IngestReport struct {
	FormatVersion int          `json:"format_version"` // IngestReportVersion
	ID            string       `json:"dataset_id"`     // the dataset's ID; "" when nothing was written
	Source        Provenance   `json:"source"`         // as in the manifest
	Counts        IngestCounts `json:"counts"`
	// Skipped lists the inputs that could not be used, in the sources'
	// order.
	Skipped []Skip `json:"skipped"`
	// Duplicates are the groups of records whose decoded pixels are
	// equal, each the records' origins in the sources' order. Every record
	// of a group is kept: datasets such as Fashion-MNIST contain a few,
	// and their counts are part of what users expect.
	Duplicates [][]string `json:"duplicates"`

	// Dir is the dataset directory and Manifest its manifest; neither is
	// stored in the report.
	Dir      string    `json:"-"`
	Manifest *Manifest `json:"-"`
}

// IngestCounts are an ingest's totals.
type IngestCounts struct {
	Inputs          int `json:"inputs"`           // items the sources yielded: records + skipped (records/N + skipped with N crops an input)
	Records         int `json:"records"`          // records written, duplicates included
	Skipped         int `json:"skipped"`          // inputs skipped
	Duplicates      int `json:"duplicates"`       // records equal to an earlier one: the sum over groups of their size − 1
	DuplicateGroups int `json:"duplicate_groups"` // groups of equal records
}

// maxIngestReportBytes bounds the ingest report a reader accepts: about a
// million skipped inputs.
const maxIngestReportBytes = 256 << 20

// ReadIngestReport reads the ingest report of the dataset in dir (see
// Dataset.IngestReport).
func ReadIngestReport(dir string) (*IngestReport, error) {
	d, err := Open(dir)
	if err != nil {
		return nil, err
	}
	return d.IngestReport()
}

// IngestReport reads and checks the dataset's IngestReportFile and returns
// it with Dir and Manifest set. A dataset without one (a dataset that
// ingest did not write, such as the embedded ones) gives an error matching
// fs.ErrNotExist. A report that is not valid JSON, has an unknown
// format_version, names another dataset ID, or whose lists and counts
// disagree with each other or with the manifest gives a *CorruptError.
func (d *Dataset) IngestReport() (*IngestReport, error) {
	f, err := os.Open(filepath.Join(d.dir, IngestReportFile))
	if err != nil {
		return nil, fmt.Errorf("data: dataset %q: ingest report: %w", d.dir, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxIngestReportBytes+1))
	if err != nil {
		return nil, fmt.Errorf("data: dataset %q: ingest report: %w", d.dir, err)
	}
	bad := func(err error, format string, args ...any) error {
		return &CorruptError{Dir: d.dir, Record: -1, Msg: IngestReportFile + ": " + fmt.Sprintf(format, args...), Err: err}
	}
	if len(b) > maxIngestReportBytes {
		return nil, bad(nil, "larger than %d bytes", maxIngestReportBytes)
	}
	var v struct {
		FormatVersion *int `json:"format_version"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, bad(err, "bad JSON")
	}
	if v.FormatVersion == nil || *v.FormatVersion != IngestReportVersion {
		got := "no format_version"
		if v.FormatVersion != nil {
			got = fmt.Sprintf("format_version %d", *v.FormatVersion)
		}
		return nil, bad(nil, "%s is not supported: this build reads version %d", got, IngestReportVersion)
	}
	var r IngestReport
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, bad(err, "bad JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, bad(nil, "data after the JSON object")
	}
	if r.ID != d.id {
		return nil, bad(nil, "the report of dataset %.12s…, not of this one (%.12s…)", r.ID, d.id)
	}
	groups, dups := 0, 0
	for i, g := range r.Duplicates {
		if len(g) < 2 {
			return nil, bad(nil, "duplicate group %d has %d records: want at least 2", i, len(g))
		}
		groups, dups = groups+1, dups+len(g)-1
	}
	records := 0
	for _, n := range d.man.Splits {
		records += n
	}
	c := r.Counts
	perInput := max(d.man.Preprocessing.Crops.N, 1)
	if c.Skipped != len(r.Skipped) || c.Skipped != d.man.Skipped || c.Duplicates != dups || c.Duplicates != d.man.Duplicates ||
		c.DuplicateGroups != groups || c.Records != records || c.Records != (c.Inputs-c.Skipped)*perInput {
		return nil, bad(nil, "counts %+v disagree with the lists (%d skipped, %d duplicates in %d groups) or the manifest (%d records, %d skipped, %d duplicates)",
			c, len(r.Skipped), dups, groups, records, d.man.Skipped, d.man.Duplicates)
	}
	r.Dir, r.Manifest = d.dir, d.Manifest()
	return &r, nil
}

// ErrSkipped is wrapped by Ingest's error in strict mode when inputs were
// bad; the report lists them.
var ErrSkipped = errors.New("bad inputs")

// Ingest decodes and preprocesses every item of the sources, in parallel,
// and writes them as a dataset in cfg.Out, in the sources' order, with its
// report (IngestReportFile). Bad inputs are skipped and listed in the
// report (in strict mode they fail the ingest, with nothing written, and
// the returned report lists them). The dataset is written under a
// temporary name and renamed into place only when complete, so an error
// or a cancelled ctx leaves nothing at cfg.Out.
//
// The class names are, by precedence: cfg.Classes or cfg.ClassesFile;
// else, per input, a ClassesFile in the input folder; else the source's
// own. Every input must end up with the same names, and names must match
// the sources' number of classes (a *ClassNamesError otherwise).
func Ingest(ctx context.Context, cfg IngestConfig, p Progress) (*IngestReport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	pre := cfg.Preprocess.WithDefaults()
	var srcs []Source
	var names [][]string
	var notes []string
	for _, in := range cfg.Inputs {
		s, err := OpenSource(in, cfg.Format)
		if err != nil {
			return nil, err
		}
		if cfg.Unlabelled {
			s = unlabel(s)
		}
		srcs = append(srcs, s)
		own := s.Classes()
		if cfg.Classes == nil && cfg.ClassesFile == "" && !cfg.Unlabelled {
			n, path, err := classNamesFor(in, own)
			if err != nil {
				return nil, fmt.Errorf("data: ingest: %w", err)
			}
			if n != nil {
				own = n
				notes = append(notes, fmt.Sprintf("Class names of %q from %q.", in, path))
			}
		}
		names = append(names, own)
	}
	classes, err := agreeClasses(cfg.Inputs, names)
	if err != nil {
		return nil, err
	}
	switch {
	case cfg.ClassesFile != "":
		given, err := ReadClassNames(cfg.ClassesFile)
		if err == nil {
			err = matchClassCount(cfg.ClassesFile, given, classes)
		}
		if err != nil {
			return nil, fmt.Errorf("data: ingest: %w", err)
		}
		classes = given
		notes = append(notes, fmt.Sprintf("Class names from %q.", cfg.ClassesFile))
	case cfg.Classes != nil:
		if err := matchClassCount("", cfg.Classes, classes); err != nil {
			return nil, fmt.Errorf("data: ingest: %w", err)
		}
		classes = slices.Clone(cfg.Classes)
		notes = append(notes, "Class names given to ingest.")
	}
	if cfg.Unlabelled {
		notes = append(notes, "Labels dropped: every record unlabelled.")
	}
	prov := Provenance{Format: srcs[0].Format(), Inputs: cfg.Inputs, Notes: strings.Join(notes, " ")}
	w, err := Create(cfg.Out, pre, classes, prov)
	if err != nil {
		return nil, err
	}
	defer w.Abort() // a no-op after a successful Close

	rep := &IngestReport{FormatVersion: IngestReportVersion, Source: prov, Dir: cfg.Out, Skipped: []Skip{}, Duplicates: [][]string{}}
	rep.Source.Inputs = slices.Clone(cfg.Inputs)
	seen := map[[32]byte]int{} // pixels' hash → a group in rep.Duplicates, or −1 − an index into firsts
	var firsts []string        // origins of records with no duplicate so far
	add := func(split string, r Record) error {
		h := sha256.Sum256(r.Pixels)
		switch g, dup := seen[h]; {
		case !dup:
			seen[h] = -1 - len(firsts)
			firsts = append(firsts, r.Origin)
		case g < 0:
			seen[h] = len(rep.Duplicates)
			rep.Duplicates = append(rep.Duplicates, []string{firsts[-1-g], r.Origin})
		default:
			rep.Duplicates[g] = append(rep.Duplicates[g], r.Origin)
		}
		rep.Counts.Records++
		return w.Add(split, r)
	}
	p.Start("ingest", countItems(ctx, srcs))
	defer p.Done()
	err = decodeAll(ctx, srcs, cfg.Workers, pre, func(k int, it Item, d decoded) error {
		p.Add(1)
		rep.Counts.Inputs++
		if d.err != nil {
			path := it.Path
			if path == "" {
				path = filepath.Join(cfg.Inputs[k], filepath.FromSlash(it.Origin))
			}
			rep.Skipped = append(rep.Skipped, Skip{Path: path, Origin: it.Origin, Reason: reason(d.err)})
			return nil
		}
		// The split is the input's: the crops of a photo stay together.
		split := it.Split
		if split == "" {
			split = Train
		}
		if split == Train && cfg.ValFraction > 0 && inVal(cfg.Seed, it.Origin, cfg.ValFraction) {
			split = Val
		}
		if d.crops == nil {
			return add(split, Record{Pixels: d.pix, Label: it.Label, Origin: it.Origin})
		}
		for j, c := range d.crops {
			if err := add(split, Record{Pixels: c.Pixels, Label: it.Label, Origin: CropOrigin(it.Origin, j, c.Rect)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	rep.Counts.Skipped = len(rep.Skipped)
	rep.Counts.DuplicateGroups = len(rep.Duplicates)
	for _, g := range rep.Duplicates {
		rep.Counts.Duplicates += len(g) - 1
	}
	if cfg.Strict && len(rep.Skipped) > 0 {
		return rep, fmt.Errorf("data: ingest: %d bad inputs, first %q: %s: %w", len(rep.Skipped), rep.Skipped[0].Path, rep.Skipped[0].Reason, ErrSkipped)
	}
	w.SetCounts(rep.Counts.Duplicates, rep.Counts.Skipped)
	w.Attach(IngestReportFile, func(id string) ([]byte, error) {
		r := *rep
		r.ID = id
		b, err := json.MarshalIndent(&r, "", "  ")
		return append(b, '\n'), err
	})
	m, id, err := w.Close()
	if err != nil {
		return nil, err
	}
	rep.Manifest, rep.ID = m, id
	return rep, nil
}

// agreeClasses returns the inputs' common class names, or an error
// naming the first input whose classes differ.
func agreeClasses(inputs []string, names [][]string) ([]string, error) {
	classes := names[0]
	for i, n := range names[1:] {
		if !slices.Equal(n, classes) {
			return nil, fmt.Errorf("data: ingest: inputs %q and %q have different classes (%v and %v)",
				inputs[0], inputs[i+1], classes, n)
		}
	}
	return classes, nil
}

// reason is the message of a skipped input's error, without the prefix
// that names the file (the report names it).
func reason(err error) string {
	var ie *ImageError
	if errors.As(err, &ie) {
		return ie.Err.Error()
	}
	var fe *folderError
	if errors.As(err, &fe) {
		return fe.msg
	}
	return err.Error()
}

// inVal reports whether the training record from origin goes to the
// validation split: a seeded hash of the origin, below the fraction.
func inVal(seed uint64, origin string, fraction float64) bool {
	h := fnv.New64a()
	h.Write([]byte(origin))
	x := h.Sum64() ^ seed*0x9e3779b97f4a7c15
	// splitmix64 finaliser, to spread the bits.
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return float64(x>>11)/float64(1<<53) < fraction
}

// decoded is what decoding made of an item: its pixels, or with crops its
// crops, or the error that made it unusable.
type decoded struct {
	pix   []uint8
	crops []Crop
	err   error
}

// decodeItem decodes and preprocesses one item.
func decodeItem(it Item, pre Preprocess) (d decoded) {
	switch {
	case it.Err != nil:
		d.err = it.Err
	case it.Path != "" && pre.Crops.N > 0:
		d.crops, d.err = DecodeCrops(it.Path, pre, it.Origin)
	case it.Path != "":
		d.pix, d.err = DecodeFile(it.Path, pre)
	case it.Image != nil && it.Image.Bounds().Empty():
		d.err = &ImageError{Err: fmt.Errorf("%w: %d×%d", ErrNoPixels, it.Image.Bounds().Dx(), it.Image.Bounds().Dy())}
	case it.Image != nil && pre.Crops.N > 0:
		d.crops = ConvertCrops(it.Image, pre, it.Origin)
	case it.Image != nil:
		d.pix = Convert(it.Image, pre)
	default:
		d.err = errors.New("item has neither a path nor an image")
	}
	return d
}

// countItems returns the number of items of srcs when every source is an
// image folder, whose walk is cheap next to decoding; else -1 (unknown).
func countItems(ctx context.Context, srcs []Source) int {
	n := 0
	for _, s := range srcs {
		f, ok := s.(*Folder)
		if !ok {
			return -1
		}
		if err := f.Items(ctx, func(Item) error { n++; return nil }); err != nil {
			return -1
		}
	}
	return n
}

// unlabel returns s with its labels dropped (IngestConfig.Unlabelled).
func unlabel(s Source) Source {
	if f, ok := s.(*Folder); ok {
		g := *f
		g.classes = nil // walked whole, every image unlabelled
		return &g
	}
	return unlabelledSource{s}
}

// unlabelledSource is a source whose items have no labels.
type unlabelledSource struct{ Source }

func (unlabelledSource) Classes() []string { return nil }

func (u unlabelledSource) Items(ctx context.Context, yield func(Item) error) error {
	return u.Source.Items(ctx, func(it Item) error {
		it.Label = -1
		return yield(it)
	})
}

// decodeAll runs every item of srcs through decoding and preprocessing on
// workers goroutines (GOMAXPROCS when 0) and calls emit for each, in the
// sources' order, from one goroutine, with the index of the item's source
// and what decoding made of it. It stops at the first error emit returns,
// at a source's own error, or when ctx is cancelled. At most 4·workers
// items are in flight; with crops, an item's decoded image is dropped as
// soon as its crops are cut.
func decodeAll(ctx context.Context, srcs []Source, workers int, pre Preprocess, emit func(int, Item, decoded) error) error {
	if workers == 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	type job struct {
		seq, src int
		it       Item
	}
	type result struct {
		seq, src int
		it       Item
		d        decoded
	}
	jobs := make(chan job)
	results := make(chan result, workers)
	// At most window items are in flight, so the reorder buffer is bounded.
	window := make(chan struct{}, 4*workers)

	var srcErr error
	go func() {
		defer close(jobs)
		seq := 0
		for k, s := range srcs {
			err := s.Items(ctx, func(it Item) error {
				select {
				case window <- struct{}{}:
				case <-ctx.Done():
					return ctx.Err()
				}
				select {
				case jobs <- job{seq, k, it}:
					seq++
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			})
			if err != nil {
				if ctx.Err() == nil {
					srcErr = err
				}
				return
			}
		}
	}()
	var wg sync.WaitGroup
	wg.Add(workers)
	for range workers {
		go func() {
			defer wg.Done()
			for j := range jobs {
				results <- result{seq: j.seq, src: j.src, it: j.it, d: decodeItem(j.it, pre)}
			}
		}()
	}
	go func() {
		wg.Wait()
		close(results)
	}()

	pending := map[int]result{}
	next := 0
	var emitErr error
	for r := range results {
		pending[r.seq] = r
		for {
			q, ok := pending[next]
			if !ok {
				break
			}
			delete(pending, next)
			next++
			<-window
			if emitErr == nil {
				if emitErr = emit(q.src, q.it, q.d); emitErr != nil {
					cancel()
				}
			}
		}
	}
	switch {
	case emitErr != nil:
		return emitErr
	case srcErr != nil:
		return srcErr
	}
	return context.Cause(ctx)
}
