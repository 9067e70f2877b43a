// Package servertest starts a real hub for tests: the real server on a real
// 127.0.0.1:0 listener with a real SQLite file in the test's temp dir, and
// mints tokens for it. Like net/http/httptest, for presencehub.
package servertest
