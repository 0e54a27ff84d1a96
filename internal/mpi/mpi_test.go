//go:build !nompi

package mpi

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// requireMPI skips the test when Open MPI's library (or, with launcher,
// mpirun) is missing, unless PATCHWISE_REQUIRE_MPI=1 says it must run.
func requireMPI(t *testing.T, launcher bool) {
	t.Helper()
	_, _, err := Probe()
	if err == nil && launcher {
		_, err = exec.LookPath("mpirun")
	}
	if err != nil {
		if os.Getenv("PATCHWISE_REQUIRE_MPI") == "1" {
			t.Fatalf("PATCHWISE_REQUIRE_MPI=1 but: %v", err)
		}
		t.Skipf("no Open MPI: %v", err)
	}
}

func TestProbe(t *testing.T) {
	requireMPI(t, false)
	path, version, err := Probe()
	if err != nil {
		t.Fatal(err)
	}
	if path == "" || !strings.Contains(version, ".") {
		t.Errorf("Probe = %q, %q", path, version)
	}
}

func TestOpenMissing(t *testing.T) {
	_, err := open(filepath.Join(t.TempDir(), "libmpi.so.40"))
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("open of a missing file: %v, want ErrUnavailable", err)
	}
}

func TestOpenNotOpenMPI(t *testing.T) {
	_, err := open("libc.so.6")
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "not Open MPI") {
		t.Fatalf("open of libc: %v, want ErrUnavailable saying it is not Open MPI", err)
	}
}

// helperEnv marks the test binary run by mpirun in TestAllreduce.
const helperEnv = "PATCHWISE_MPI_TEST_HELPER"

// TestAllreduce runs this test binary as three processes under mpirun;
// each sums its rank-dependent vectors with the others' and checks the
// result.
func TestAllreduce(t *testing.T) {
	switch os.Getenv(helperEnv) {
	case "1":
		allreduceHelper()
		return
	case "bench":
		timingHelper()
		return
	}
	requireMPI(t, true)
	cmd := exec.Command("mpirun", "--allow-run-as-root", "--oversubscribe", "-np", "3",
		os.Args[0], "-test.run=^TestAllreduce$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("mpirun: %v\n%s", err, out)
	}
	for r := range 3 {
		if want := fmt.Sprintf("rank %d of 3 ok", r); !strings.Contains(string(out), want) {
			t.Errorf("no %q in the output:\n%s", want, out)
		}
	}
}

// allreduceHelper is one process of TestAllreduce: it prints "rank R of
// P ok" or what went wrong, and aborts the world on a failure.
func allreduceHelper() {
	c, err := Init()
	if err != nil {
		fmt.Println("init:", err)
		os.Exit(1)
	}
	fail := func(format string, args ...any) {
		fmt.Printf("rank %d: "+format+"\n", append([]any{c.Rank()}, args...)...)
		c.Abort(1)
	}
	r, p := c.Rank(), c.Size()
	f32 := make([]float32, 1000)
	f64 := make([]float64, 7)
	for i := range f32 {
		f32[i] = float32(r*1000 + i)
	}
	for i := range f64 {
		f64[i] = float64(r) + 0.5*float64(i)
	}
	if err := c.SumFloat32(f32); err != nil {
		fail("%v", err)
	}
	if err := c.SumFloat64(f64); err != nil {
		fail("%v", err)
	}
	for i, v := range f32 {
		if want := float32(p*(p-1)/2*1000 + p*i); v != want {
			fail("float32 sum [%d] = %v, want %v", i, v, want)
		}
	}
	for i, v := range f64 {
		if want := float64(p*(p-1)/2) + 0.5*float64(p*i); v != want {
			fail("float64 sum [%d] = %v, want %v", i, v, want)
		}
	}
	if err := c.Finalize(); err != nil {
		fail("%v", err)
	}
	fmt.Printf("rank %d of %d ok\n", r, p)
}

// benchEnv gives timingHelper the number of float32 values and of
// all-reduces.
const benchEnv = "PATCHWISE_MPI_BENCH"

// BenchmarkAllreduce measures an in-place float32 sum over two processes
// started by mpirun (on one machine: through shared memory), per
// all-reduce, for sizes around a small encoder's gradient (1M values, 4
// MB) and a batch norm's statistics (hundreds of values). The metric is
// ns/allreduce, timed by rank 0 between two barriers; ns/op includes
// mpirun's start.
func BenchmarkAllreduce(b *testing.B) {
	if _, _, err := Probe(); err != nil {
		b.Skip(err)
	}
	if _, err := exec.LookPath("mpirun"); err != nil {
		b.Skip(err)
	}
	for _, n := range []int{256, 1 << 16, 1 << 20} {
		b.Run(fmt.Sprintf("floats=%d", n), func(b *testing.B) {
			cmd := exec.Command("mpirun", "--allow-run-as-root", "--oversubscribe", "-np", "2",
				os.Args[0], "-test.run=^TestAllreduce$", "-test.count=1")
			cmd.Env = append(os.Environ(), helperEnv+"=bench", fmt.Sprintf("%s=%d %d", benchEnv, n, b.N))
			out, err := cmd.CombinedOutput()
			if err != nil {
				b.Fatalf("mpirun: %v\n%s", err, out)
			}
			var ns float64
			for line := range strings.Lines(string(out)) {
				if _, err := fmt.Sscanf(line, "allreduce ns %g", &ns); err == nil {
					break
				}
			}
			if ns == 0 {
				b.Fatalf("no timing in the output:\n%s", out)
			}
			b.ReportMetric(ns, "ns/allreduce")
			b.ReportMetric(float64(4*n)/ns*1e9/(1<<20), "MB/s")
		})
	}
}

// timingHelper is one process of BenchmarkAllreduce.
func timingHelper() {
	var n, reps int
	fmt.Sscanf(os.Getenv(benchEnv), "%d %d", &n, &reps)
	c, err := Init()
	if err != nil {
		fmt.Println("init:", err)
		os.Exit(1)
	}
	v := make([]float32, n)
	barrier := []float64{0}
	for range 3 { // warm up
		c.SumFloat32(v)
	}
	c.SumFloat64(barrier)
	t0 := time.Now()
	for range reps {
		if err := c.SumFloat32(v); err != nil {
			fmt.Println(err)
			c.Abort(1)
		}
	}
	c.SumFloat64(barrier)
	if c.Rank() == 0 {
		fmt.Printf("allreduce ns %g\n", float64(time.Since(t0).Nanoseconds())/float64(max(reps, 1)))
	}
	c.Finalize()
}
