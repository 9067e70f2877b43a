package main

import (
	"flag"
	"strings"
)

type unknownVar struct{ name, hint string }

// unknownVariables are the PRESENCEHUB_* variables in environ that are no
// setting of any command (a misspelling is otherwise silently ignored), each
// with the closest known name as a hint.
func unknownVariables(environ []string) []unknownVar {
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	var c config
	c.bind(fs)
	new(tokenOpts).bind(fs)
	new(publishOpts).bind(fs)
	known := map[string]bool{}
	fs.VisitAll(func(f *flag.Flag) { known[envName(f.Name)] = true })
	var out []unknownVar
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "PRESENCEHUB_") || known[name] ||
			// the test suite's switches and the load generator's own
			strings.HasPrefix(name, "PRESENCEHUB_REQUIRE_") || strings.HasPrefix(name, "PRESENCEHUB_BENCH_") {
			continue
		}
		best, dist := "", 3
		for k := range known {
			if d := editDistance(name, k); d < dist || d == dist && k < best {
				best, dist = k, d
			}
		}
		hint := "not a presencehub setting (presencehub -h lists them)"
		if best != "" {
			hint = "did you mean " + best + "?"
		}
		out = append(out, unknownVar{name, hint})
	}
	return out
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
