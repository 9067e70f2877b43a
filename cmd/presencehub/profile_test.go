package main

import (
	"slices"
	"testing"
)

func TestTakeFlag(t *testing.T) {
	tests := []struct {
		args      []string
		wantRest  []string
		wantValue string
	}{
		{[]string{"-db", "x", "-cpuprofile", "p.out", "-v"}, []string{"-db", "x", "-v"}, "p.out"},
		{[]string{"--cpuprofile=p.out"}, []string{}, "p.out"},
		{[]string{"-cpuprofile"}, []string{"-cpuprofile"}, ""},
		{[]string{"-db", "x"}, []string{"-db", "x"}, ""},
		{[]string{"--", "-cpuprofile", "p"}, []string{"--", "-cpuprofile", "p"}, ""},
	}
	for _, tt := range tests {
		rest, v := takeFlag(slices.Clone(tt.args), "cpuprofile")
		if v != tt.wantValue || !slices.Equal(rest, tt.wantRest) && len(rest)+len(tt.wantRest) > 0 {
			t.Errorf("takeFlag(%q) = %q, %q; want %q, %q", tt.args, rest, v, tt.wantRest, tt.wantValue)
		}
	}
}
