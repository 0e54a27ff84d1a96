package main

import (
	"io"
	"os"
	"time"

	"github.com/patchwise-ml/patchwise/pipeline"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// newProgress returns a pipeline.Progress that draws progress bars on
// stderr when stderr is a terminal, and pipeline.NoProgress otherwise (a
// pipe, a file, a test buffer).
func newProgress(stderr io.Writer) pipeline.Progress {
	f, ok := stderr.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return pipeline.NoProgress{}
	}
	return &barProgress{w: f}
}

// barProgress shows one progress bar per task, cleared when the task ends.
type barProgress struct {
	w   io.Writer
	bar *progressbar.ProgressBar // current task's bar; nil between tasks
}

// Start begins a bar named what; total < 0 (or 0) shows a spinner.
func (p *barProgress) Start(what string, total int) {
	p.Done()
	if total <= 0 {
		total = -1
	}
	p.bar = progressbar.NewOptions(total,
		progressbar.OptionSetWriter(p.w),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(), // items per second: images for ingest, steps for bench
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)
}

// Add advances the current bar by n.
func (p *barProgress) Add(n int) {
	if p.bar != nil {
		_ = p.bar.Add(n) // a bar that cannot draw is not worth failing for
	}
}

// Done finishes and clears the current bar, if any.
func (p *barProgress) Done() {
	if p.bar != nil {
		_ = p.bar.Finish()
		p.bar = nil
	}
}
