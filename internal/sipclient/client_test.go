package sipclient_test

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/presencehub/presencehub/internal/sipclient"
)

// A failed connection's error never carries the token (it ends up in logs).
func TestDial_ErrorDoesNotLeakToken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	const token = "header.payload.signature"
	_, err = sipclient.Dial(context.Background(), "ws://"+addr+"/ws", sipclient.Options{Token: token})
	if err == nil {
		t.Fatal("dial to a closed port succeeded")
	}
	if strings.Contains(err.Error(), "signature") {
		t.Fatalf("error leaks the token: %v", err)
	}
}
