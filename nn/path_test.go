package nn

import (
	"os"
	"testing"

	"github.com/patchwise-ml/patchwise/nn/kernel"
)

// TestKernelPath fails when PATCHWISE_CPU names a kernel path that was not
// honoured. Reading the variable here, while tests run, also makes the go
// command's test cache tell runs on different forced paths apart (the
// kernel package reads it at start-up, which the cache does not see).
func TestKernelPath(t *testing.T) {
	v := os.Getenv(kernel.EnvVar)
	if err := kernel.EnvError(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s=%q: kernel path %s (this CPU runs %v)", kernel.EnvVar, v, kernel.Path(), kernel.Paths())
}
