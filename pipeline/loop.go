package pipeline

import (
	"context"
	"errors"
)

// loop is a training loop: a step function and the hooks that run after
// steps, in order (writing the metrics log, validating, saving a
// checkpoint, …).
type loop struct {
	// step takes one step (from 1).
	step func(ctx context.Context, step int) error
	// hooks run after the steps they are due at.
	hooks []hook
	// interrupted runs when ctx is cancelled, after the last step done
	// (0 if none), before the loop returns ctx's error.
	interrupted func(step int) error
}

// hook is work done after some steps.
type hook struct {
	every int  // after every step that is a multiple of every; ≤ 0: never in between
	last  bool // and after the last step
	run   func(ctx context.Context, step int) error
}

// due reports whether h runs after step of a loop that ends at last.
func (h hook) due(step, last int) bool {
	return (h.every > 0 && step%h.every == 0) || (h.last && step == last)
}

// run takes steps from+1 … to, each followed by its due hooks. The first
// error of a step or hook ends the loop and is returned; a cancelled ctx,
// seen before a step or as the cause of an error, ends it after the
// interrupted function, with ctx's error joined to the interrupted
// function's, if any.
func (l *loop) run(ctx context.Context, from, to int) error {
	done := from
	stop := func(err error) error {
		if ctx.Err() == nil {
			return err
		}
		if l.interrupted != nil {
			if ierr := l.interrupted(done); ierr != nil {
				return errors.Join(ctx.Err(), ierr)
			}
		}
		return ctx.Err()
	}
	for step := from + 1; step <= to; step++ {
		if ctx.Err() != nil {
			return stop(ctx.Err())
		}
		if err := l.step(ctx, step); err != nil {
			return stop(err)
		}
		done = step
		for _, h := range l.hooks {
			if h.due(step, to) {
				if err := h.run(ctx, step); err != nil {
					return stop(err)
				}
			}
		}
	}
	return nil
}
