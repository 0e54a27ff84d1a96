package claim

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestClaimOnceAmongMany(t *testing.T) {
	d := Dir{Path: filepath.Join(t.TempDir(), "claims"), Timeout: time.Minute}
	var mu sync.Mutex
	var got []*Claim
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := d.Claim("pretrain-a", Identity{Owner: fmt.Sprint("w", i), Host: "h", PID: i})
			if err == nil {
				mu.Lock()
				got = append(got, c)
				mu.Unlock()
			} else if !errors.Is(err, ErrHeld) {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if len(got) != 1 {
		t.Fatalf("%d processes hold the claim, want 1", len(got))
	}
	st, err := d.State("pretrain-a")
	if err != nil || st.Status() != "claimed" || st.Claim.Owner != got[0].Record().Owner || st.Claim.Generation != 1 {
		t.Fatalf("state %+v, %v", st, err)
	}
	if err := got[0].Finish(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Claim("pretrain-a", Identity{Owner: "late"}); !errors.Is(err, ErrDone) {
		t.Errorf("claim of a finished task: %v, want ErrDone", err)
	}
	if st, _ := d.State("pretrain-a"); st.Status() != "finished" || st.Done.Owner != got[0].Record().Owner {
		t.Errorf("state after finish %+v", st)
	}
}

func TestClaimTakeoverAfterTimeout(t *testing.T) {
	d := Dir{Path: t.TempDir(), Timeout: 200 * time.Millisecond}
	dead, err := d.Claim("probe-a", Identity{Owner: "dead", Host: "h1", PID: 1})
	if err != nil {
		t.Fatal(err)
	}
	var he *HeldError
	if _, err := d.Claim("probe-a", Identity{Owner: "b"}); !errors.As(err, &he) || he.State.Claim.Owner != "dead" {
		t.Fatalf("claim of a fresh claim: %v", err)
	}
	time.Sleep(300 * time.Millisecond) // the owner died: no heartbeat
	if st, _ := d.State("probe-a"); st.Status() != "stale" {
		t.Fatalf("status %q, want stale", st.Status())
	}
	// Two takers at once: one gets generation 2.
	var wg sync.WaitGroup
	var mu sync.Mutex
	var takers []*Claim
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if c, err := d.Claim("probe-a", Identity{Owner: fmt.Sprint("t", i)}); err == nil {
				mu.Lock()
				takers = append(takers, c)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(takers) != 1 || takers[0].Record().Generation != 2 {
		t.Fatalf("%d takers", len(takers))
	}
	// The old owner, come back, finds it lost the task.
	if err := dead.Heartbeat(); !errors.Is(err, ErrLost) {
		t.Errorf("heartbeat of a taken-over claim: %v, want ErrLost", err)
	}
	// Keep refreshes the heartbeat: the claim does not go stale.
	ctx, stop := takers[0].Keep(context.Background(), 50*time.Millisecond)
	time.Sleep(400 * time.Millisecond)
	if st, _ := d.State("probe-a"); st.Status() != "claimed" || ctx.Err() != nil {
		t.Errorf("kept claim: status %q, ctx %v", st.Status(), ctx.Err())
	}
	stop()
	if err := takers[0].Fail(errors.New("out of memory")); err != nil {
		t.Fatal(err)
	}
	st, _ := d.State("probe-a")
	if st.Status() != "failed" || st.Failure.Error != "out of memory" || st.Failure.Generation != 2 {
		t.Errorf("after failure: %q %+v", st.Status(), st.Failure)
	}
	// A failed task can be claimed again, at once.
	c, err := d.Claim("probe-a", Identity{Owner: "retry"})
	if err != nil || c.Record().Generation != 3 {
		t.Fatalf("retry: %v", err)
	}
	if err := c.Release(ReleasedInterrupted); err != nil {
		t.Fatal(err)
	}
	if st, _ := d.State("probe-a"); st.Status() != "interrupted" {
		t.Errorf("status %q, want interrupted", st.Status())
	}
}

func TestKeepCancelsWhenLost(t *testing.T) {
	d := Dir{Path: t.TempDir(), Timeout: 100 * time.Millisecond}
	c, err := d.Claim("x", Identity{Owner: "a"})
	if err != nil {
		t.Fatal(err)
	}
	// A taker that judged the claim stale created generation 2.
	if err := os.WriteFile(filepath.Join(d.Path, "x.claim-2"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, stop := c.Keep(context.Background(), 10*time.Millisecond)
	defer stop()
	select {
	case <-ctx.Done():
		if !errors.Is(context.Cause(ctx), ErrLost) {
			t.Errorf("cause %v, want ErrLost", context.Cause(ctx))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Keep did not notice the lost claim")
	}
}

func TestBadTaskName(t *testing.T) {
	d := Dir{Path: t.TempDir(), Timeout: time.Second}
	for _, name := range []string{"", "a/b", ".hidden"} {
		if _, err := d.Claim(name, Identity{}); err == nil {
			t.Errorf("claim %q: no error", name)
		}
	}
}
