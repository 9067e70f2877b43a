//go:build race

package compositor

func init() { raceEnabled = true }
