package augment

import (
	"context"
	"io"
	"sync"
)

// stream is the machinery the loaders share: one goroutine hands out the
// batches' positions (epoch, index) in order, at most prefetch ahead of
// the consumer; workers fill them in parallel; next returns them in order.
// A batch depends only on its position and the epoch's permutation, so
// the result does not depend on the number of workers.
type stream[B any] struct {
	ctx    context.Context
	cancel context.CancelFunc
	order  chan *streamJob[B] // closed at the end of a finite pass, or when ctx is done
	wg     sync.WaitGroup
	err    error
}

type streamJob[B any] struct {
	epoch, index int
	perm         []int // the epoch's image order; nil when not shuffled
	done         chan streamResult[B]
}

type streamResult[B any] struct {
	b   B
	err error
}

// streamPlan says which batches a stream makes.
type streamPlan struct {
	perEpoch          int    // batches per epoch
	endless           bool   // run on through the following epochs; else stop after epoch's last batch
	shuffle           bool   // each epoch's order is NewRand(seed, e, −1).Perm(images)
	images            int    // images in the split
	seed              uint64 // for the permutations
	workers, prefetch int
}

// startStream starts the batches from (epoch, index) on. Each worker gets
// its own fill function from newFill (so it can keep scratch memory); fill
// makes the batch at a position, or returns an error that ends the stream.
func startStream[B any](ctx context.Context, epoch, index int, plan streamPlan,
	newFill func() func(epoch, index int, perm []int) (B, error)) *stream[B] {
	ctx, cancel := context.WithCancel(ctx)
	s := &stream[B]{ctx: ctx, cancel: cancel, order: make(chan *streamJob[B], plan.prefetch)}
	jobs := make(chan *streamJob[B])
	s.wg.Add(1 + plan.workers)
	go func() {
		defer s.wg.Done()
		defer close(jobs)
		defer close(s.order)
		var perm []int
		permEpoch := -1
		for e, k := epoch, max(index, 0); ; k++ {
			if k >= plan.perEpoch {
				if !plan.endless {
					return
				}
				e, k = e+1, 0
			}
			if plan.shuffle && e != permEpoch {
				perm, permEpoch = NewRand(plan.seed, e, -1).Perm(plan.images), e
			}
			j := &streamJob[B]{epoch: e, index: k, perm: perm, done: make(chan streamResult[B], 1)}
			select {
			case s.order <- j:
			case <-ctx.Done():
				return
			}
			select {
			case jobs <- j:
			case <-ctx.Done():
				return
			}
		}
	}()
	for range plan.workers {
		go func() {
			defer s.wg.Done()
			fill := newFill()
			for {
				select {
				case j, ok := <-jobs:
					if !ok || ctx.Err() != nil {
						return
					}
					b, err := fill(j.epoch, j.index, j.perm)
					j.done <- streamResult[B]{b, err}
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	return s
}

// next returns the next batch in order: io.EOF after the last batch of a
// finite pass, ctx's error after cancellation, or a fill's error; once it
// has returned an error it returns the same error on every later call.
func (s *stream[B]) next() (B, error) {
	var zero B
	if s.err == nil {
		s.err = s.ctx.Err()
	}
	if s.err != nil {
		return zero, s.err
	}
	var j *streamJob[B]
	var ok bool
	select {
	case j, ok = <-s.order:
	case <-s.ctx.Done():
		s.err = s.ctx.Err()
		return zero, s.err
	}
	if !ok {
		if s.err = s.ctx.Err(); s.err == nil {
			s.err = io.EOF
		}
		return zero, s.err
	}
	select {
	case r := <-j.done:
		s.err = r.err
		return r.b, r.err
	case <-s.ctx.Done():
		s.err = s.ctx.Err()
		return zero, s.err
	}
}

// close stops the workers and waits for them.
func (s *stream[B]) close() {
	s.cancel()
	s.wg.Wait()
}
