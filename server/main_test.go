package server_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine the hub starts has an owner and an end: after all tests
// (hubs closed, clients closed) none may be left.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
