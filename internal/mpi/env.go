package mpi

import "errors"

// DefaultLibrary is the Open MPI library Init opens unless the environment
// variable PATCHWISE_MPI_LIB names another file.
const DefaultLibrary = "libmpi.so.40"

// LibraryEnv is the environment variable that names the MPI library to
// open instead of DefaultLibrary.
const LibraryEnv = "PATCHWISE_MPI_LIB"

// ErrUnavailable is wrapped by the errors of Probe and Init when the MPI
// library cannot be opened or is not Open MPI.
var ErrUnavailable = errors.New("mpi: Open MPI's library is not available")
