//go:build race

package notifier

func init() { raceEnabled = true }
