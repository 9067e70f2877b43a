package interop

import (
	"testing"
	"time"
)

// The harness itself, without a hub: every script refuses to run without its parameters, says
// why on stdout as an event, and exits with the usage code.
func TestScripts_MissingArguments_ExitWithUsage(t *testing.T) {
	t.Parallel()
	for _, script := range []string{
		"jssip-register.mjs", "sipjs-register.mjs", "sipjs-publish.mjs",
		"jssip-subscribe.mjs", "sipjs-subscribe.mjs",
	} {
		t.Run(script, func(t *testing.T) {
			c := Start(t, script)
			e := c.ExpectEv("error", 30*time.Second)
			if e.Message == "" {
				t.Errorf("error event without a message: %s", e.Line)
			}
			if code := c.Wait(10 * time.Second); code != ExitUsage {
				t.Errorf("exit code = %d, want %d (usage)", code, ExitUsage)
			}
		})
	}
}

// A hub that is not there: the WebSocket never opens, the script reports it and exits refused.
func TestScripts_NoHub_ReportConnectFailed(t *testing.T) {
	t.Parallel()
	for _, script := range []string{"jssip-register.mjs", "sipjs-register.mjs"} {
		t.Run(script, func(t *testing.T) {
			c := Start(t, script, "--url", "ws://127.0.0.1:1/ws", "--token", "x", "--domain", "hub.test",
				"--user", "1001", "--linger", "0")
			c.ExpectEv("connectFailed", 30*time.Second)
			if code := c.Wait(10 * time.Second); code != ExitRefused {
				t.Errorf("exit code = %d, want %d (refused)", code, ExitRefused)
			}
		})
	}
}
