package pipeline

import (
	"runtime"
	"runtime/debug"
)

// Version is the module version Patchwise was built from: a release tag,
// or "devel" plus the VCS revision (and "+dirty") when built from a
// checkout, or "devel" alone.
func Version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	v, dirty := "devel", ""
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			v += " " + s.Value[:min(12, len(s.Value))]
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	return v + dirty
}

// GoVersion is the Go release that built Patchwise.
func GoVersion() string { return runtime.Version() }
