//go:build race

package nn

// raceEnabled reports whether the race detector is on: it allocates on
// its own account, so allocation bounds are not checked under it.
const raceEnabled = true
