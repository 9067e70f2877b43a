package feed_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine has an owner and an end: streams, hubs and clients
// closed, none may outlive the tests.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
