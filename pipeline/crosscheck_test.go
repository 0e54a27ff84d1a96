package pipeline

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestStatsSciPyCrossCheck has bench/stats_scipy.py recompute with SciPy
// the intervals of generated data and of a small run's report.json, from
// the report's own per-image bitsets, and validate the report against
// docs/report.schema.json. It needs Debian's /usr/bin/python3 with
// python3-scipy and python3-jsonschema; without them it skips, unless
// PATCHWISE_REQUIRE_SCIPY=1 (CI sets it).
func TestStatsSciPyCrossCheck(t *testing.T) {
	const python = "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import scipy, numpy, jsonschema").Run(); err != nil {
		if os.Getenv("PATCHWISE_REQUIRE_SCIPY") == "1" {
			t.Fatalf("%s with scipy, numpy and jsonschema (apt-get install python3-scipy python3-jsonschema): %v", python, err)
		}
		t.Skipf("no %s with scipy and jsonschema (apt-get install python3-scipy python3-jsonschema; PATCHWISE_REQUIRE_SCIPY=1 makes this a failure)", python)
	}
	if testing.Short() {
		t.Skip("short: the cross-check runs a small pretext comparison")
	}
	dir := t.TempDir()

	// Generated cases: per-seed differences and per-image differences of
	// the size a comparison has.
	type crossCase struct {
		Diffs       []float64  `json:"diffs"`
		Delta       []float64  `json:"delta"`
		Level       float64    `json:"level"`
		Resamples   int        `json:"resamples"`
		T           *[]float64 `json:"t"`
		Bootstrap   []float64  `json:"bootstrap"`
		SeedsNeeded int        `json:"seeds_needed"`
	}
	rng := rand.New(rand.NewPCG(7, 8))
	var cases []crossCase
	for i, n := range []int{1, 2, 3, 5, 8} {
		level := []float64{0.95, 0.9, 0.99}[i%3]
		c := crossCase{Level: level, Resamples: 10000}
		for range n {
			c.Diffs = append(c.Diffs, 0.01*float64(i)+0.015*rng.NormFloat64())
		}
		images := 500 + 400*i
		for range images {
			c.Delta = append(c.Delta, float64(rng.IntN(2*n+1)-n)/float64(n)*0.5+0.01*float64(i%2))
		}
		if iv := pairedT(c.Diffs, level); iv != nil {
			c.T = &[]float64{iv.Lo, iv.Hi}
			m, s := meanSD(c.Diffs)
			c.SeedsNeeded = seedsNeeded(m, s, level)
		}
		iv := bootstrapMean(c.Delta, level, c.Resamples, rand.New(rand.NewPCG(1, uint64(i))))
		c.Bootstrap = []float64{iv.Lo, iv.Hi}
		cases = append(cases, c)
	}
	b, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	casesPath := filepath.Join(dir, "cases.json")
	if err := os.WriteFile(casesPath, b, 0o644); err != nil {
		t.Fatal(err)
	}

	runDir := fullRun(t)
	out, err := exec.Command(python, "../bench/stats_scipy.py", "--cases", casesPath,
		"--report", filepath.Join(runDir, ReportJSONFile), "--schema", "../docs/report.schema.json").CombinedOutput()
	t.Logf("bench/stats_scipy.py:\n%s", out)
	if err != nil {
		t.Fatalf("bench/stats_scipy.py: %v", err)
	}
}
