//go:build !nompi

package mpi

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"
)

// Open MPI's values of the constants the binding uses (mpi.h).
const (
	threadSerialized = 2 // MPI_THREAD_SERIALIZED
	success          = 0 // MPI_SUCCESS
)

// inPlace is MPI_IN_PLACE: ((void *) 1) in Open MPI's mpi.h.
const inPlace uintptr = 1

// maxCount is the largest count one MPI call takes (a C int).
const maxCount = 1<<31 - 1

// lib holds the library's functions and handles.
type lib struct {
	path string

	initThread func(argc, argv unsafe.Pointer, required int32, provided *int32) int32
	commRank   func(comm uintptr, rank *int32) int32
	commSize   func(comm uintptr, size *int32) int32
	allreduce  func(send uintptr, recv unsafe.Pointer, count int32, datatype, op, comm uintptr) int32
	abort      func(comm uintptr, code int32) int32
	finalize   func() int32
	getVersion func(version, subversion *int32) int32

	world, float, double, sum uintptr
}

var (
	loadOnce sync.Once
	loaded   *lib
	loadErr  error
)

// library returns the MPI library's path: PATCHWISE_MPI_LIB, or DefaultLibrary.
func library() string {
	if p := os.Getenv(LibraryEnv); p != "" {
		return p
	}
	return DefaultLibrary
}

// load opens the library and resolves its symbols, once.
func load() (*lib, error) {
	loadOnce.Do(func() { loaded, loadErr = open(library()) })
	return loaded, loadErr
}

func open(path string) (*lib, error) {
	// RTLD_GLOBAL: Open MPI's components, opened by the library in turn,
	// resolve their symbols against it.
	h, err := purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_GLOBAL)
	if err != nil {
		return nil, fmt.Errorf("%w: %v (install Open MPI, e.g. Debian's openmpi-bin, or name the library in %s)", ErrUnavailable, err, LibraryEnv)
	}
	l := &lib{path: path}
	for _, s := range []struct {
		name string
		addr *uintptr
	}{{"ompi_mpi_comm_world", &l.world}, {"ompi_mpi_float", &l.float}, {"ompi_mpi_double", &l.double}, {"ompi_mpi_op_sum", &l.sum}} {
		a, err := purego.Dlsym(h, s.name)
		if err != nil || a == 0 {
			return nil, fmt.Errorf("%w: %s has no symbol %s: it is not Open MPI", ErrUnavailable, path, s.name)
		}
		*s.addr = a
	}
	for _, f := range []struct {
		name string
		fn   any
	}{{"MPI_Init_thread", &l.initThread}, {"MPI_Comm_rank", &l.commRank}, {"MPI_Comm_size", &l.commSize},
		{"MPI_Allreduce", &l.allreduce}, {"MPI_Abort", &l.abort}, {"MPI_Finalize", &l.finalize}, {"MPI_Get_version", &l.getVersion}} {
		a, err := purego.Dlsym(h, f.name)
		if err != nil || a == 0 {
			return nil, fmt.Errorf("%w: %s has no function %s", ErrUnavailable, path, f.name)
		}
		purego.RegisterFunc(f.fn, a)
	}
	return l, nil
}

// Probe opens the MPI library without initialising it and returns its
// path and the MPI standard version it implements ("3.1"), or an error
// wrapping ErrUnavailable.
func Probe() (path, version string, err error) {
	l, err := load()
	if err != nil {
		return "", "", err
	}
	var v, sv int32
	if rc := l.getVersion(&v, &sv); rc != success {
		return l.path, "", fmt.Errorf("mpi: MPI_Get_version: error %d", rc)
	}
	return l.path, fmt.Sprintf("%d.%d", v, sv), nil
}

// Comm is MPI_COMM_WORLD of the initialised library: the processes that
// mpirun or srun started together. Its methods may be called from any
// goroutine; they run one at a time.
type Comm struct {
	l          *lib
	rank, size int
	mu         sync.Mutex
	done       bool
}

var (
	world    *Comm
	worldErr error
	initMu   sync.Mutex
)

// Init opens and initialises the MPI library (MPI_Init_thread with
// MPI_THREAD_SERIALIZED: Go runs goroutines on any thread) and returns
// MPI_COMM_WORLD. Started without mpirun or srun, Open MPI makes a world of
// one process. Later calls return the same Comm (or error): MPI is
// initialised once per process.
func Init() (*Comm, error) {
	initMu.Lock()
	defer initMu.Unlock()
	if world != nil || worldErr != nil {
		return world, worldErr
	}
	world, worldErr = initWorld()
	return world, worldErr
}

func initWorld() (*Comm, error) {
	l, err := load()
	if err != nil {
		return nil, err
	}
	var provided int32
	if rc := l.initThread(nil, nil, threadSerialized, &provided); rc != success {
		return nil, fmt.Errorf("mpi: MPI_Init_thread: error %d", rc)
	}
	c := &Comm{l: l}
	if provided < threadSerialized {
		c.Abort(1)
		return nil, fmt.Errorf("mpi: %s gives thread level %d, less than MPI_THREAD_SERIALIZED", l.path, provided)
	}
	var rank, size int32
	if rc := l.commRank(l.world, &rank); rc != success {
		return nil, fmt.Errorf("mpi: MPI_Comm_rank: error %d", rc)
	}
	if rc := l.commSize(l.world, &size); rc != success {
		return nil, fmt.Errorf("mpi: MPI_Comm_size: error %d", rc)
	}
	c.rank, c.size = int(rank), int(size)
	return c, nil
}

// Rank returns this process's rank in the world, from 0.
func (c *Comm) Rank() int { return c.rank }

// Size returns the number of processes in the world.
func (c *Comm) Size() int { return c.size }

// SumFloat32 replaces every value of v by its sum over the world's
// processes (MPI_Allreduce in place). Every process must call it with as
// many values, in the same order of collective calls.
func (c *Comm) SumFloat32(v []float32) error {
	return c.allreduce(unsafe.Pointer(unsafe.SliceData(v)), len(v), 4, c.l.float, "float32")
}

// SumFloat64 is SumFloat32 for float64 values.
func (c *Comm) SumFloat64(v []float64) error {
	return c.allreduce(unsafe.Pointer(unsafe.SliceData(v)), len(v), 8, c.l.double, "float64")
}

func (c *Comm) allreduce(p unsafe.Pointer, n, size int, datatype uintptr, what string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done {
		return errors.New("mpi: Allreduce after Finalize")
	}
	for off := 0; off < n; off += maxCount {
		k := min(n-off, maxCount)
		if rc := c.l.allreduce(inPlace, unsafe.Add(p, off*size), int32(k), datatype, c.l.sum, c.l.world); rc != success {
			return fmt.Errorf("mpi: MPI_Allreduce of %d %s values: error %d", k, what, rc)
		}
	}
	runtime.KeepAlive(p)
	return nil
}

// Abort ends every process of the world with exit code code
// (MPI_Abort): the way out of a collective that another process will
// never join. It does not return.
func (c *Comm) Abort(code int) {
	c.l.abort(c.l.world, int32(code))
	os.Exit(code) // MPI_Abort returned: make sure this process ends
}

// Finalize shuts MPI down (MPI_Finalize); every process calls it once,
// after its last collective. Later calls do nothing.
func (c *Comm) Finalize() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done {
		return nil
	}
	c.done = true
	if rc := c.l.finalize(); rc != success {
		return fmt.Errorf("mpi: MPI_Finalize: error %d", rc)
	}
	return nil
}
