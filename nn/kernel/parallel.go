package kernel

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// Chunks returns the number of chunks of at most size items that cover n items.
func Chunks(n, size int) int {
	if n <= 0 {
		return 0
	}
	return (n + size - 1) / size
}

// For splits [0, n) into consecutive chunks of size items (the last may be
// shorter) and calls fn(chunk, lo, hi) once per chunk, spread over up to
// GOMAXPROCS goroutines. The split depends only on n and size, never on the
// number of cores, so work that keeps one partial result per chunk and sums
// them in chunk order gives the same bits on any machine. fn must be safe to
// call concurrently for different chunks. For panics if size < 1.
func For(n, size int, fn func(chunk, lo, hi int)) {
	if size < 1 {
		panic("kernel: For: chunk size < 1")
	}
	chunks := Chunks(n, size)
	workers := min(runtime.GOMAXPROCS(0), chunks)
	if workers <= 1 {
		for c := 0; c < chunks; c++ {
			fn(c, c*size, min(n, (c+1)*size))
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	wg.Add(workers)
	for w := 0; w < workers; w++ {
		go func() {
			defer wg.Done()
			for {
				c := int(next.Add(1) - 1)
				if c >= chunks {
					return
				}
				fn(c, c*size, min(n, (c+1)*size))
			}
		}()
	}
	wg.Wait()
}

// ForElems calls fn(lo, hi) over [0, n) in parallel chunks sized for
// elementwise loops: large enough that scheduling costs nothing, small
// enough to share the work between cores.
func ForElems(n int, fn func(lo, hi int)) {
	const grain = 1 << 15
	if n <= grain {
		fn(0, n)
		return
	}
	size := max(grain, (n+4*runtime.GOMAXPROCS(0)-1)/(4*runtime.GOMAXPROCS(0)))
	For(n, size, func(_, lo, hi int) { fn(lo, hi) })
}
