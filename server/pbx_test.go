package server_test

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/presencehub/presencehub/server"
	"github.com/presencehub/presencehub/server/auth"
	"github.com/presencehub/presencehub/server/servertest"
)

// startPBXListener serves plain SIP on 127.0.0.1 UDP and TCP for the hub.
func startPBXListener(t *testing.T, hub *servertest.Hub) (udpAddr, tcpAddr string) {
	t.Helper()
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- hub.Server.ServeSIP(ctx, udp, tcp) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeSIP: %v", err)
		}
	})
	return udp.LocalAddr().String(), tcp.Addr().String()
}

// exchange sends one SIP message over plain UDP or TCP and reads the answer.
func exchange(t *testing.T, network, addr string, msg []byte) *sip.Response {
	t.Helper()
	conn, err := net.DialTimeout(network, addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	local := conn.LocalAddr().String()
	msg = bytes.Replace(msg, []byte("127.0.0.1:5060"), []byte(local), 1)
	msg = bytes.Replace(msg, []byte("SIP/2.0/UDP"), []byte("SIP/2.0/"+strings.ToUpper(network)), 1)
	msg = bytes.Replace(msg, []byte("branch=z9hG4bKkam1"), []byte("branch="+sip.GenerateBranch()), 1)
	if head, body, ok := bytes.Cut(msg, []byte("\r\n\r\n")); ok && len(body) > 0 {
		// Keep Content-Length true to the (edited) body, as a stream transport needs.
		head = regexp.MustCompile(`Content-Length: \d+`).ReplaceAll(head, []byte("Content-Length: "+strconv.Itoa(len(body))))
		msg = append(append(head, "\r\n\r\n"...), body...)
	}
	if _, err := conn.Write(msg); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 65535)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("no answer over %s: %v", network, err)
	}
	m, err := sip.ParseMessage(buf[:n])
	if err != nil {
		t.Fatalf("unparsable answer: %v\n%s", err, buf[:n])
	}
	return m.(*sip.Response)
}

func kamailioPublish(t *testing.T) []byte {
	data, err := os.ReadFile(filepath.Join("..", "testdata", "pbx", "kamailio-pua-dialoginfo-publish.sip"))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// A PBX publishes its extensions' dialog state over plain SIP; browsers
// watching over WebSocket see it.
func TestPBX_PlainSIPPublish_ReachesWebSocketWatchers(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{Configure: func(c *server.Config) {
		c.SIPTrusted = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	}})
	udpAddr, tcpAddr := startPBXListener(t, hub)
	w, opts := newWatcher()
	c := hub.Dial(testCtx(t), "2001", opts)
	do(t, c, subscribeReq(t, c, "2001", "1001", "dialog"))
	w.next(t)

	res := exchange(t, "udp", udpAddr, kamailioPublish(t))
	if res.StatusCode != 200 || res.GetHeader("SIP-ETag") == nil {
		t.Fatalf("PUBLISH over UDP: %d %s", res.StatusCode, res.Reason)
	}
	n := w.next(t)
	if lamp(n.Body()) != "early" || !strings.Contains(string(n.Body()), "sip:2001@hub.test") {
		t.Fatalf("watcher got %s", n.Body())
	}
	for _, tt := range []struct {
		name, network, msg string
		code               int
	}{
		{"OPTIONS over TCP (qualify)", "tcp", "OPTIONS sip:hub.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKkam1\r\nFrom: <sip:pbx@hub.test>;tag=o\r\nTo: <sip:hub.test>\r\nCall-ID: q1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n", 200},
		{"INVITE → 405", "udp", "INVITE sip:1001@hub.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKkam1\r\nFrom: <sip:pbx@hub.test>;tag=o\r\nTo: <sip:1001@hub.test>\r\nCall-ID: i1\r\nCSeq: 1 INVITE\r\nContact: <sip:pbx@127.0.0.1>\r\nContent-Length: 0\r\n\r\n", 405},
		{"PUBLISH over TCP", "tcp", string(bytes.Replace(kamailioPublish(t), []byte("<state>early</state>"), []byte("<state>confirmed</state>"), 1)), 200},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if res := exchange(t, tt.network, map[string]string{"udp": udpAddr, "tcp": tcpAddr}[tt.network], []byte(tt.msg)); res.StatusCode != tt.code {
				t.Fatalf("got %d %s, want %d", res.StatusCode, res.Reason, tt.code)
			}
		})
	}
	if lamp(w.next(t).Body()) != "confirmed" {
		t.Fatal("watcher did not see the TCP PUBLISH")
	}
}

func TestPBX_UntrustedAddressWithoutToken_Returns401(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{Configure: func(c *server.Config) {
		c.SIPTrusted = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	}})
	udpAddr, _ := startPBXListener(t, hub)
	if res := exchange(t, "udp", udpAddr, kamailioPublish(t)); res.StatusCode != 401 {
		t.Fatalf("untrusted PUBLISH: %d, want 401", res.StatusCode)
	}
	// A Bearer on the request (RFC 8898) is accepted from anywhere.
	tok := hub.Token("pbx", func(c *auth.Claims) { c.Publish = []string{"*"} })
	msg := bytes.Replace(kamailioPublish(t), []byte("Event: dialog\r\n"), []byte("Event: dialog\r\nAuthorization: Bearer "+tok+"\r\n"), 1)
	if res := exchange(t, "udp", udpAddr, msg); res.StatusCode != 200 {
		t.Fatalf("PUBLISH with Bearer: %d %s", res.StatusCode, res.Reason)
	}
}
