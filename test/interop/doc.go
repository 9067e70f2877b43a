// Package interop holds the interop tests with real JsSIP 3.13 and SIP.js 0.21 against a real hub.
// It is a test package: all of its code is in _test.go files, and nothing imports it.
//
// The clients are the unmodified npm packages, pinned in package.json and package-lock.json in
// this directory, run by Node 20 as child processes of `go test`: one small ES module per role
// (jssip-register.mjs, sipjs-register.mjs, sipjs-publish.mjs, jssip-subscribe.mjs,
// sipjs-subscribe.mjs, with shared code in lib/) with globalThis.WebSocket taken from the `ws`
// package. Each script takes its parameters as flags, prints one JSON object per line on stdout
// for every event ({"ev":"registered"}, {"ev":"notify","state":"early",...}, one {"ev":"sip",...}
// per SIP message on the wire), reads commands as JSON lines on stdin ({"cmd":"unsubscribe"}),
// writes the raw SIP wire trace to stderr and ends with a documented exit code (README.md).
//
// Client (harness_test.go) runs one script: it reads the events into a channel, sends commands,
// waits for an event with a deadline, and bounds the process's life with a context timeout. When
// a test fails, its clients' events and wire traces are written to the test log.
//
// The tests skip, saying why, when `node` is not on PATH or node_modules is missing here
// (install with `npm ci` in test/interop). With PRESENCEHUB_REQUIRE_NODE=1 in the environment
// (as .ci/test sets it) they fail instead of skipping.
package interop
