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
	if os.Getenv(helperEnv) == "1" {
		allreduceHelper()
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
