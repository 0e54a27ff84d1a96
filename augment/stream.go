package augment

import (
	"context"
	"fmt"
	"io"
	"sync"
)

// stream is a Loader's machinery: a reader goroutine reads the images of
// each batch from the split (data.Reader, in the epoch's order) and hands
// the batches' jobs out in order, at most Prefetch ahead of the consumer;
// workers draw the samples in parallel; next returns the batches in
// order. A batch depends only on its position and its images, so the
// result does not depend on the number of workers.
type stream struct {
	ctx    context.Context
	cancel context.CancelFunc
	order  chan *streamJob // closed at the end of a finite pass, or when ctx is done
	wg     sync.WaitGroup
	err    error
}

type streamJob struct {
	epoch, index int
	imgs         []loaded // the images at positions [lo, lo+len(imgs)) of the epoch's order
	lo           int
	done         chan streamResult
}

type streamResult struct {
	b   *Batch
	err error
}

// startStream starts the batches of l from (epoch, index) on.
func startStream(ctx context.Context, l *Loader, epoch, index int) *stream {
	ctx, cancel := context.WithCancel(ctx)
	s := &stream{ctx: ctx, cancel: cancel, order: make(chan *streamJob, l.cfg.Prefetch)}
	jobs := make(chan *streamJob)
	s.wg.Add(1 + l.cfg.Workers)
	go func() {
		defer s.wg.Done()
		defer close(jobs)
		defer close(s.order)
		s.read(l, epoch, max(index, 0), jobs)
	}()
	for range l.cfg.Workers {
		go func() {
			defer s.wg.Done()
			d := l.sampler.NewDrawer()
			for {
				select {
				case j, ok := <-jobs:
					if !ok || ctx.Err() != nil {
						return
					}
					b := l.batch(j.epoch, j.index)
					err := l.fill(d, b, j.imgs, j.lo)
					if err != nil {
						b.Release()
						b = nil
					}
					j.done <- streamResult{b, err}
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	return s
}

// read is the reader goroutine: it reads the images of the batches from
// (epoch, index) on, epoch after epoch with Shuffle, and sends their jobs
// to s.order and jobs; a read error becomes the result of the batch it
// stopped.
func (s *stream) read(l *Loader, epoch, index int, jobs chan<- *streamJob) {
	per := l.BatchesPerEpoch()
	send := func(j *streamJob) bool {
		select {
		case s.order <- j:
		case <-s.ctx.Done():
			return false
		}
		if j.imgs == nil {
			return false // an error: nothing for the workers
		}
		select {
		case jobs <- j:
			return true
		case <-s.ctx.Done():
			return false
		}
	}
	fail := func(e, k int, err error) {
		j := &streamJob{epoch: e, index: k, done: make(chan streamResult, 1)}
		j.done <- streamResult{nil, fmt.Errorf("augment: epoch %d batch %d: %w", e, k, err)}
		send(j)
	}
	for e, k := epoch, index; ; e, k = e+1, 0 {
		if k < per && !s.readEpoch(l, e, k, per, send, fail) {
			return
		}
		if !l.cfg.Shuffle {
			return
		}
	}
}

// readEpoch reads the images of batches [k, per) of epoch e and sends
// their jobs; false means stop.
func (s *stream) readEpoch(l *Loader, e, k, per int, send func(*streamJob) bool, fail func(e, k int, err error)) bool {
	lo, _ := l.images(k)
	r, err := l.ds.NewReader(s.ctx, l.split, l.order(e), lo)
	if err != nil {
		fail(e, k, err)
		return false
	}
	defer r.Close()
	var prev loaded // the last image read, which the next batch may share
	prevPos := -1
	for ; k < per; k++ {
		lo, hi := l.images(k)
		imgs := make([]loaded, 0, hi-lo+1)
		if prevPos == lo {
			imgs = append(imgs, prev)
		}
		for len(imgs) < hi-lo+1 {
			rec, i, err := r.Next()
			if err != nil {
				if s.ctx.Err() == nil {
					fail(e, k, err)
				}
				return false
			}
			imgs = append(imgs, loaded{rec, i})
		}
		prev, prevPos = imgs[len(imgs)-1], hi
		if !send(&streamJob{epoch: e, index: k, imgs: imgs, lo: lo, done: make(chan streamResult, 1)}) {
			return false
		}
	}
	return true
}

// next returns the next batch in order: io.EOF after the last batch of a
// finite pass, ctx's error after cancellation, or a job's error; once it
// has returned an error it returns the same error on every later call.
func (s *stream) next() (*Batch, error) {
	if s.err == nil {
		s.err = s.ctx.Err()
	}
	if s.err != nil {
		return nil, s.err
	}
	var j *streamJob
	var ok bool
	select {
	case j, ok = <-s.order:
	case <-s.ctx.Done():
		s.err = s.ctx.Err()
		return nil, s.err
	}
	if !ok {
		if s.err = s.ctx.Err(); s.err == nil {
			s.err = io.EOF
		}
		return nil, s.err
	}
	select {
	case r := <-j.done:
		s.err = r.err
		return r.b, r.err
	case <-s.ctx.Done():
		s.err = s.ctx.Err()
		return nil, s.err
	}
}

// close stops the reader and the workers and waits for them.
func (s *stream) close() {
	s.cancel()
	s.wg.Wait()
}
