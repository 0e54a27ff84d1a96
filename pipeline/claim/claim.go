package claim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/patchwise-ml/patchwise/internal/fsutil"
)

// FormatVersion is the format_version of the claim, done and err files.
const FormatVersion = 1

// Releases: why an owner let go of a claim (Record.Released).
const (
	ReleasedDone        = "done"        // the task finished
	ReleasedFailed      = "failed"      // the task failed (see the err file)
	ReleasedInterrupted = "interrupted" // the owner was stopped (a signal): the task may be taken at once
)

// Identity names a claiming process.
type Identity struct {
	// Owner is a free label: a batch job and task ID, or the host and
	// process.
	Owner string `json:"owner"`
	Host  string `json:"host"`
	PID   int    `json:"pid"`
}

// Self is this process: its host name and process ID, with owner as
// the label ("HOST pid N" when owner is "").
func Self(owner string) Identity {
	host, _ := os.Hostname()
	pid := os.Getpid()
	if owner == "" {
		owner = fmt.Sprintf("%s pid %d", host, pid)
	}
	return Identity{Owner: owner, Host: host, PID: pid}
}

// String is the owner's label, with the host and process ID when the
// label does not say them.
func (id Identity) String() string {
	if id.Owner == fmt.Sprintf("%s pid %d", id.Host, id.PID) {
		return id.Owner
	}
	return fmt.Sprintf("%s (host %s, pid %d)", id.Owner, id.Host, id.PID)
}

// Record is a claim file, T.claim-N.
type Record struct {
	FormatVersion int    `json:"format_version"`
	Task          string `json:"task"`
	// Generation is N: 1 for the first claim, one more for each claim
	// of the task after it (a takeover, or a new attempt after a
	// release).
	Generation int `json:"generation"`
	Identity
	Claimed   time.Time `json:"claimed"`
	Heartbeat time.Time `json:"heartbeat"`
	// Released is "" while the owner holds the claim, else why it let
	// go (ReleasedDone, ReleasedFailed, ReleasedInterrupted).
	Released string `json:"released,omitempty"`
}

// Done is a done file, T.done.
type Done struct {
	FormatVersion int    `json:"format_version"`
	Task          string `json:"task"`
	Generation    int    `json:"generation"` // of the claim that finished it
	Identity
	Finished time.Time `json:"finished"`
}

// Failure is an err file, T.err: the latest failure of the task.
type Failure struct {
	FormatVersion int    `json:"format_version"`
	Task          string `json:"task"`
	Generation    int    `json:"generation"`
	Identity
	Time  time.Time `json:"time"`
	Error string    `json:"error"`
}

// Dir is a claim directory.
type Dir struct {
	Path string
	// Timeout is the age of heartbeat past which a claim is stale.
	Timeout time.Duration
}

// Errors of Dir.Claim.
var (
	ErrDone = errors.New("the task has finished")
	ErrHeld = errors.New("the task is claimed by another process")
	ErrLost = errors.New("the claim was taken over by another process")
)

// State is what a claim directory says about a task.
type State struct {
	Task    string
	Claim   *Record  // the latest claim; nil if never claimed
	Done    *Done    // nil until finished
	Failure *Failure // the latest failure; nil if none
	// Age is how old the latest claim's heartbeat is.
	Age time.Duration
	// Stale: the latest claim is held (not released) and its heartbeat
	// is older than the timeout.
	Stale bool
}

// Held reports whether a live owner holds the task.
func (s State) Held() bool {
	return s.Done == nil && s.Claim != nil && s.Claim.Released == "" && !s.Stale
}

// Failed reports whether the task's latest attempt failed and nobody
// holds it now.
func (s State) Failed() bool {
	return s.Done == nil && s.Failure != nil && !s.Held() &&
		(s.Claim == nil || s.Failure.Generation >= s.Claim.Generation)
}

// Status is the state in a word: "finished", "claimed", "stale",
// "failed", "interrupted" or "pending".
func (s State) Status() string {
	switch {
	case s.Done != nil:
		return "finished"
	case s.Held():
		return "claimed"
	case s.Stale:
		return "stale"
	case s.Failed():
		return "failed"
	case s.Claim != nil && s.Claim.Released == ReleasedInterrupted:
		return "interrupted"
	}
	return "pending"
}

func checkTask(task string) error {
	if task == "" || strings.ContainsAny(task, `/\`) || strings.HasPrefix(task, ".") {
		return fmt.Errorf("claim: bad task name %q", task)
	}
	return nil
}

func (d Dir) claimPath(task string, gen int) string {
	return filepath.Join(d.Path, fmt.Sprintf("%s.claim-%d", task, gen))
}

func (d Dir) donePath(task string) string { return filepath.Join(d.Path, task+".done") }
func (d Dir) errPath(task string) string  { return filepath.Join(d.Path, task+".err") }

// latest returns the highest claim generation of task (0 if none).
func (d Dir) latest(task string) (int, error) {
	entries, err := os.ReadDir(d.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("claim: %w", err)
	}
	prefix := task + ".claim-"
	gen := 0
	for _, e := range entries {
		if n, ok := strings.CutPrefix(e.Name(), prefix); ok {
			if g, err := strconv.Atoi(n); err == nil && g > gen {
				gen = g
			}
		}
	}
	return gen, nil
}

// readJSON reads path into v; a missing file gives fs.ErrNotExist.
func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("claim: %s: %w", path, err)
	}
	return nil
}

// State reads task's files. A claim file that cannot be parsed yet (its
// creator is writing it) counts as held, fresh by its modification time.
func (d Dir) State(task string) (State, error) {
	st := State{Task: task}
	if err := checkTask(task); err != nil {
		return st, err
	}
	var done Done
	switch err := readJSON(d.donePath(task), &done); {
	case err == nil:
		st.Done = &done
	case errors.Is(err, fs.ErrNotExist):
	default:
		// A done file is created exclusively and may be seen empty:
		// its existence is what counts.
		st.Done = &Done{Task: task}
	}
	var fail Failure
	switch err := readJSON(d.errPath(task), &fail); {
	case err == nil:
		st.Failure = &fail
	case !errors.Is(err, fs.ErrNotExist):
		return st, err
	}
	gen, err := d.latest(task)
	if err != nil || gen == 0 {
		return st, err
	}
	path := d.claimPath(task, gen)
	var rec Record
	if err := readJSON(path, &rec); err != nil {
		fi, serr := os.Stat(path)
		if serr != nil {
			return st, err
		}
		rec = Record{Task: task, Generation: gen, Heartbeat: fi.ModTime()}
	}
	rec.Generation = gen
	st.Claim = &rec
	st.Age = time.Since(rec.Heartbeat)
	st.Stale = rec.Released == "" && st.Age > d.Timeout
	return st, nil
}

// Tasks lists the tasks that have files in the directory, sorted; none
// when it does not exist.
func (d Dir) Tasks() ([]string, error) {
	entries, err := os.ReadDir(d.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("claim: %w", err)
	}
	seen := map[string]bool{}
	var tasks []string
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue // a file being written
		}
		task := ""
		if i := strings.LastIndex(name, ".claim-"); i > 0 {
			task = name[:i]
		} else if t, ok := strings.CutSuffix(name, ".done"); ok {
			task = t
		} else if t, ok := strings.CutSuffix(name, ".err"); ok {
			task = t
		}
		if task != "" && !seen[task] {
			seen[task] = true
			tasks = append(tasks, task)
		}
	}
	slices.Sort(tasks)
	return tasks, nil
}

// HeldError is Claim's error when a live owner holds the task; it
// matches ErrHeld.
type HeldError struct{ State State }

func (e *HeldError) Error() string {
	c := e.State.Claim
	return fmt.Sprintf("claim: %s is claimed by %v, heartbeat %s ago", e.State.Task, c.Identity, e.State.Age.Round(time.Second))
}

func (e *HeldError) Is(target error) bool { return target == ErrHeld }

// Claim claims task for id: it fails with ErrDone when the task has
// finished and with a *HeldError (ErrHeld) when a live owner holds it;
// a stale or released claim is superseded by the next generation. The
// caller must end the claim with Finish, Fail or Release.
func (d Dir) Claim(task string, id Identity) (*Claim, error) {
	if err := checkTask(task); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(d.Path, 0o755); err != nil {
		return nil, fmt.Errorf("claim: %w", err)
	}
	for {
		st, err := d.State(task)
		if err != nil {
			return nil, err
		}
		switch {
		case st.Done != nil:
			return nil, ErrDone
		case st.Held():
			return nil, &HeldError{State: st}
		}
		gen := 1
		if st.Claim != nil {
			gen = st.Claim.Generation + 1
		}
		now := time.Now().UTC()
		c := &Claim{dir: d, rec: Record{FormatVersion: FormatVersion, Task: task, Generation: gen, Identity: id, Claimed: now, Heartbeat: now}}
		b, _ := json.MarshalIndent(c.rec, "", "  ")
		err = fsutil.WriteSynced(d.claimPath(task, gen), fsutil.CreateExcl, func(w io.Writer) error {
			_, err := w.Write(append(b, '\n'))
			return err
		})
		if errors.Is(err, fs.ErrExist) {
			continue // another process took this generation: look again
		}
		if err != nil {
			return nil, fmt.Errorf("claim: %w", err)
		}
		if err := fsutil.SyncDir(d.Path); err != nil {
			return nil, fmt.Errorf("claim: %w", err)
		}
		// The task may have finished between the look and the claim.
		if _, err := os.Stat(d.donePath(task)); err == nil {
			_ = c.release(ReleasedDone)
			return nil, ErrDone
		}
		return c, nil
	}
}

// Claim is a claim held by this process.
type Claim struct {
	dir Dir
	mu  sync.Mutex
	rec Record
}

// Record returns the claim as last written.
func (c *Claim) Record() Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rec
}

// write replaces the claim file with c.rec, first checking that no newer
// generation exists (ErrLost).
func (c *Claim) write() error {
	if _, err := os.Lstat(c.dir.claimPath(c.rec.Task, c.rec.Generation+1)); err == nil {
		return fmt.Errorf("claim: %s generation %d: %w", c.rec.Task, c.rec.Generation, ErrLost)
	}
	b, err := json.MarshalIndent(c.rec, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.Replace(c.dir.claimPath(c.rec.Task, c.rec.Generation), func(w io.Writer) error {
		_, err := w.Write(append(b, '\n'))
		return err
	})
}

// Heartbeat refreshes the claim's heartbeat; it returns an error matching
// ErrLost when another process has taken the task over.
func (c *Claim) Heartbeat() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rec.Heartbeat = time.Now().UTC()
	return c.write()
}

// Keep refreshes the heartbeat every interval until stop is called. The
// context it returns, derived from ctx, is cancelled with a cause
// matching ErrLost when the claim is taken over (or its file cannot be
// written): the work under the claim must then stop.
func (c *Claim) Keep(ctx context.Context, interval time.Duration) (context.Context, func()) {
	kctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-kctx.Done():
				return
			case <-t.C:
				if err := c.Heartbeat(); err != nil {
					if !errors.Is(err, ErrLost) {
						err = fmt.Errorf("%w: %w", ErrLost, err)
					}
					cancel(err)
					return
				}
			}
		}
	}()
	return kctx, func() {
		close(done)
		wg.Wait()
		cancel(nil)
	}
}

func (c *Claim) release(why string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rec.Released = why
	c.rec.Heartbeat = time.Now().UTC()
	return c.write()
}

// Finish marks the task done (its done file, never replaced) and
// releases the claim. The done file is written even when the claim was
// lost meanwhile: the work is finished either way.
func (c *Claim) Finish() error {
	rec := c.Record()
	d := Done{FormatVersion: FormatVersion, Task: rec.Task, Generation: rec.Generation, Identity: rec.Identity, Finished: time.Now().UTC()}
	b, _ := json.MarshalIndent(d, "", "  ")
	err := fsutil.WriteSynced(c.dir.donePath(rec.Task), fsutil.CreateExcl, func(w io.Writer) error {
		_, err := w.Write(append(b, '\n'))
		return err
	})
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("claim: %w", err)
	}
	if err := fsutil.SyncDir(c.dir.Path); err != nil {
		return fmt.Errorf("claim: %w", err)
	}
	if err := c.release(ReleasedDone); err != nil && !errors.Is(err, ErrLost) {
		return err
	}
	return nil
}

// Fail records cause in the task's err file and releases the claim.
func (c *Claim) Fail(cause error) error {
	rec := c.Record()
	f := Failure{FormatVersion: FormatVersion, Task: rec.Task, Generation: rec.Generation, Identity: rec.Identity, Time: time.Now().UTC(), Error: cause.Error()}
	b, _ := json.MarshalIndent(f, "", "  ")
	if err := fsutil.Replace(c.dir.errPath(rec.Task), func(w io.Writer) error { _, err := w.Write(append(b, '\n')); return err }); err != nil {
		return fmt.Errorf("claim: %w", err)
	}
	return c.release(ReleasedFailed)
}

// Release lets go of the claim without finishing the task (why is
// ReleasedInterrupted for an owner that was stopped), so that another
// process may take it at once.
func (c *Claim) Release(why string) error { return c.release(why) }
