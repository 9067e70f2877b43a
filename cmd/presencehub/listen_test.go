package main

import (
	"bytes"
	"net"
	"strings"
	"testing"
	"time"
)

// A listener that cannot bind is a start-up error (a PBX already holds 5060
// is the usual case): the binary says which address failed and why, exits
// non-zero at once and leaves nothing serving.
func TestServe_ListenerCannotBind_ExitsNonZeroWithTheCause(t *testing.T) {
	for _, tt := range []struct {
		name string
		hold func(t *testing.T) (addr string, release func())
		flag string
		want string
	}{
		{"--sip-addr UDP port in use", func(t *testing.T) (string, func()) {
			pc, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			return pc.LocalAddr().String(), func() { pc.Close() }
		}, "PRESENCEHUB_SIP_ADDR", "cannot listen on --sip-addr %s (UDP): bind: address already in use"},
		{"--sip-addr TCP port in use", func(t *testing.T) (string, func()) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			return ln.Addr().String(), func() { ln.Close() }
		}, "PRESENCEHUB_SIP_ADDR", "cannot listen on --sip-addr %s (TCP): bind: address already in use"},
		{"--http-addr in use", func(t *testing.T) (string, func()) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			return ln.Addr().String(), func() { ln.Close() }
		}, "PRESENCEHUB_HTTP_ADDR", "cannot listen on --http-addr %s: bind: address already in use"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			addr, release := tt.hold(t)
			defer release()
			cmd := hubCommand(t, tt.flag+"="+addr)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-done
				t.Fatalf("still running 10s after start with %s in use; output:\n%s", addr, out.String())
			}
			if code := cmd.ProcessState.ExitCode(); code == 0 || code == -1 {
				t.Fatalf("exit code %d, want non-zero; output:\n%s", code, out.String())
			}
			want := "presencehub: " + strings.Replace(tt.want, "%s", addr, 1)
			if !strings.Contains(out.String(), want) {
				t.Fatalf("output lacks %q:\n%s", want, out.String())
			}
			if strings.Contains(out.String(), "presencehub serving") {
				t.Fatalf("it served before failing:\n%s", out.String())
			}
		})
	}
}
