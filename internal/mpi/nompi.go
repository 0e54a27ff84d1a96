//go:build nompi

package mpi

import "fmt"

// errNoMPI is the error of a build without MPI.
var errNoMPI = fmt.Errorf("%w: this patchwise was built with -tags nompi", ErrUnavailable)

// Probe returns an error: a build with the nompi tag has no MPI.
func Probe() (path, version string, err error) { return "", "", errNoMPI }

// Init returns an error: a build with the nompi tag has no MPI.
func Init() (*Comm, error) { return nil, errNoMPI }

// Comm is MPI_COMM_WORLD; a build with the nompi tag never makes one.
type Comm struct{}

func (c *Comm) Rank() int                    { return 0 }
func (c *Comm) Size() int                    { return 1 }
func (c *Comm) SumFloat32(v []float32) error { return errNoMPI }
func (c *Comm) SumFloat64(v []float64) error { return errNoMPI }
func (c *Comm) Abort(code int)               { panic(errNoMPI) }
func (c *Comm) Finalize() error              { return errNoMPI }
