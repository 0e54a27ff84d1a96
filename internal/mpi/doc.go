// Package mpi binds the few calls of Open MPI's C library that a
// data-parallel training needs — MPI_Init_thread, MPI_Comm_rank and
// MPI_Comm_size of MPI_COMM_WORLD, MPI_Allreduce of float32 and float64
// sums, MPI_Abort and MPI_Finalize — at run time, without cgo: the library
// (libmpi.so.40, or the file PATCHWISE_MPI_LIB names) is opened with
// purego's dlopen when Init is called, so a binary built without it runs
// anywhere and finds MPI where mpirun or srun started it.
//
// Open MPI's predefined handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_DOUBLE,
// MPI_SUM) are the addresses of its global objects ompi_mpi_comm_world,
// ompi_mpi_float, ompi_mpi_double and ompi_mpi_op_sum; other MPI
// implementations (MPICH's integer handles) are refused with an error
// that says so.
//
// Built with the nompi tag (CGO_ENABLED=0 go build -tags nompi), the
// package opens nothing and Init returns an error, and patchwise is a
// static binary; otherwise it is linked against the C library, which
// purego's dlopen needs.
//
// The package imports nothing of the project; pipeline uses it.
package mpi
