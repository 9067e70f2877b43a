package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
)

// takeFlag removes a hidden flag (-name value, -name=value, one or two
// dashes) from args and returns its value. The profiling flags are hidden:
// they are for `presencehub bench`, not for operators.
func takeFlag(args []string, name string) (rest []string, value string) {
	for i := 0; i < len(args); i++ {
		a := strings.TrimPrefix(strings.TrimPrefix(args[i], "-"), "-")
		if a == name && i+1 < len(args) {
			return append(append(rest, args[:i]...), args[i+2:]...), args[i+1]
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return append(append(rest, args[:i]...), args[i+1:]...), v
		}
		if a == "" || args[i] == "--" {
			break
		}
	}
	return args, ""
}

// startCPUProfile writes a CPU profile to path until the returned func runs.
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// writeHeapProfile writes a heap profile (after a GC) to path.
func writeHeapProfile(path string) error {
	if path == "" {
		return nil
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	defer f.Close()
	runtime.GC()
	return pprof.WriteHeapProfile(f)
}
