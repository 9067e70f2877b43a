package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/emiago/sipgo/sip"
)

// Real reverse proxies in front of the hub binary, all on loopback: nginx
// (X-Forwarded-For) and HAProxy (PROXY protocol v1 and v2, to the HTTP and
// the SIP-TCP listener). Clients take distinct loopback source addresses
// (127.0.0.2, 127.0.0.3, …) so the hub can tell them apart; the proxies
// reach the hub from 127.0.0.1, the one trusted proxy address.

// proxyBinary finds nginx or haproxy; a test skips without it unless
// PRESENCEHUB_REQUIRE_PROXY is set (.ci/test installs both and sets it).
func proxyBinary(t *testing.T, name string) string {
	t.Helper()
	for _, p := range []string{name, "/usr/sbin/" + name} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("PRESENCEHUB_REQUIRE_PROXY") != "" {
		t.Fatalf("%s not installed (apt-get install -y nginx haproxy) and PRESENCEHUB_REQUIRE_PROXY is set", name)
	}
	t.Skipf("%s not installed (apt-get install -y nginx haproxy)", name)
	return ""
}

// freeAddr is a 127.0.0.1 port free at the time of the call.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// runProxy starts a proxy process and waits until every addr accepts. It
// returns an error when the proxy exits meanwhile (a port taken since
// freeAddr chose it): the caller tries again with other ports.
func runProxy(t *testing.T, name string, args []string, addrs ...string) error {
	t.Helper()
	var out logBuffer
	cmd := exec.Command(proxyBinary(t, name), args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	for _, a := range addrs {
		deadline := time.Now().Add(10 * time.Second)
		for {
			c, err := net.DialTimeout("tcp", a, time.Second)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-exited:
				return fmt.Errorf("%s exited: %s", name, out.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not listening on %s: %s", name, a, out.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

// retry runs start up to three times (each on new ports).
func retry(t *testing.T, start func() error) {
	t.Helper()
	var err error
	for range 3 {
		if err = start(); err == nil {
			return
		}
		t.Log(err)
	}
	t.Fatal(err)
}

// startNginx proxies WebSocket upgrades to hub with X-Forwarded-For.
func startNginx(t *testing.T, hub string) (addr string) {
	retry(t, func() error {
		dir := t.TempDir()
		addr = freeAddr(t)
		path := filepath.Join(dir, "nginx.conf")
		if err := os.WriteFile(path, []byte(nginxConf(dir, addr, hub)), 0o644); err != nil {
			t.Fatal(err)
		}
		return runProxy(t, "nginx", []string{"-p", dir, "-c", path}, addr)
	})
	return addr
}

func nginxConf(dir, addr, hub string) string {
	return fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  map $http_upgrade $connection_upgrade { default upgrade; '' close; }
  server {
    listen %[2]s;
    location / {
      proxy_pass http://%[3]s;
      proxy_http_version 1.1;
      proxy_buffering off;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }
  }
}
`, dir, addr, hub)
}

// startHAProxy relays TCP to each backend, announcing the client with the
// PROXY protocol version of that backend ("send-proxy" or "send-proxy-v2").
func startHAProxy(t *testing.T, backends ...[2]string) (addrs []string) {
	retry(t, func() error {
		var conf strings.Builder
		conf.WriteString("global\n  maxconn 64\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\n")
		addrs = nil
		for i, b := range backends {
			addr := freeAddr(t)
			addrs = append(addrs, addr)
			fmt.Fprintf(&conf, "frontend f%d\n  bind %s\n  default_backend b%d\nbackend b%d\n  server hub %s %s\n", i, addr, i, i, b[0], b[1])
		}
		path := filepath.Join(t.TempDir(), "haproxy.cfg")
		if err := os.WriteFile(path, []byte(conf.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return runProxy(t, "haproxy", []string{"-db", "-f", path}, addrs...)
	})
	return addrs
}

// dialFrom opens a SIP WebSocket to addr from the loopback address src,
// with extra upgrade headers; it returns the HTTP status of the upgrade.
func dialFrom(t *testing.T, src, addr string, header http.Header) (*websocket.Conn, int) {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	client := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, res, err := websocket.Dial(ctx, "ws://"+addr+"/ws", &websocket.DialOptions{HTTPClient: client, HTTPHeader: header, Subprotocols: []string{"sip"}})
	if err != nil {
		if res != nil {
			return nil, res.StatusCode
		}
		t.Fatalf("dial %s from %s: %v", addr, src, err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c, res.StatusCode
}

var receivedParam = regexp.MustCompile(`(?i)^Via:[^\r\n]*;received=([0-9a-f.:]+)`)

// receivedBy sends OPTIONS (no token needed) and returns the Via received=
// of the answer: the address the hub sees (RFC 3261 §18.2.1).
func receivedBy(t *testing.T, c *websocket.Conn) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	msg := "OPTIONS sip:" + testDomain + " SIP/2.0\r\nVia: SIP/2.0/WS probe.invalid;branch=" + sip.GenerateBranch() +
		"\r\nMax-Forwards: 70\r\nFrom: <sip:probe@" + testDomain + ">;tag=p\r\nTo: <sip:" + testDomain + ">\r\nCall-ID: " + sip.GenerateBranch() +
		"\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
	if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	_, b, err := c.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\r\n") {
		if m := receivedParam.FindStringSubmatch(line); m != nil {
			return m[1]
		}
	}
	t.Fatalf("no Via received in\n%s", b)
	return ""
}

func TestProxies_NginxForwardedFor_ClientsCountedAndSeenSeparately(t *testing.T) {
	proxyBinary(t, "nginx")
	h := startHub(t, "PRESENCEHUB_TRUSTED_PROXIES=127.0.0.1/32", "PRESENCEHUB_MAX_CONNECTIONS_PER_IP=1", "PRESENCEHUB_LOG_LEVEL=debug")
	nginx := startNginx(t, h.addr)

	a, code := dialFrom(t, "127.0.0.2", nginx, nil)
	if code != http.StatusSwitchingProtocols {
		t.Fatalf("client A through nginx: HTTP %d", code)
	}
	if got := receivedBy(t, a); got != "127.0.0.2" {
		t.Fatalf("client A is seen as %s, want 127.0.0.2", got)
	}
	tests := []struct {
		name, src string
		header    http.Header
		code      int
		seenAs    string
	}{
		{"client A again: over its own limit of 1", "127.0.0.2", nil, http.StatusServiceUnavailable, ""},
		{"client B: its own count", "127.0.0.3", nil, http.StatusSwitchingProtocols, "127.0.0.3"},
		// nginx appends the peer to what the client sent: the right-most
		// untrusted address is the client's own, whatever it claims.
		{"client C claiming to be A", "127.0.0.4", http.Header{"X-Forwarded-For": {"127.0.0.2"}}, http.StatusSwitchingProtocols, "127.0.0.4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, code := dialFrom(t, tt.src, nginx, tt.header)
			if code != tt.code {
				t.Fatalf("HTTP %d, want %d", code, tt.code)
			}
			if tt.seenAs != "" {
				if got := receivedBy(t, c); got != tt.seenAs {
					t.Fatalf("seen as %s, want %s", got, tt.seenAs)
				}
			}
		})
	}
	// The log names the client, not the proxy.
	line := h.waitLog("websocket connected")
	if line["remote"] != "127.0.0.2" {
		t.Errorf("log line names %v, want 127.0.0.2", line["remote"])
	}
}

func TestProxies_UntrustedPeersAreNotBelieved(t *testing.T) {
	h := startHub(t, "PRESENCEHUB_TRUSTED_PROXIES=127.0.0.1/32")
	// X-Forwarded-For from a peer that is no trusted proxy.
	c, code := dialFrom(t, "127.0.0.2", h.addr, http.Header{"X-Forwarded-For": {"203.0.113.9"}})
	if code != http.StatusSwitchingProtocols {
		t.Fatalf("HTTP %d", code)
	}
	if got := receivedBy(t, c); got != "127.0.0.2" {
		t.Fatalf("an untrusted peer's X-Forwarded-For was believed: seen as %s", got)
	}
	// A PROXY header from a peer that is no trusted proxy is no header: the
	// request is malformed.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 5 * time.Second}
	conn, err := d.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "PROXY TCP4 203.0.113.9 127.0.0.1 1111 80\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	status, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.HasPrefix(status, "HTTP/1.1 400") {
		t.Fatalf("PROXY header from an untrusted peer: %q %v, want HTTP 400", status, err)
	}
}

func TestProxies_HAProxyProxyProtocol_HTTPAndSIPTCP(t *testing.T) {
	proxyBinary(t, "haproxy")
	h := startHub(t, "PRESENCEHUB_TRUSTED_PROXIES=127.0.0.1/32", "PRESENCEHUB_MAX_CONNECTIONS_PER_IP=1",
		"PRESENCEHUB_SIP_ADDR=127.0.0.1:0", "PRESENCEHUB_SIP_TRUSTED=127.0.0.6/32")
	sipTCP, _ := h.waitLog("plain SIP for PBXs")["tcp"].(string)
	px := startHAProxy(t, [2]string{h.addr, "send-proxy"}, [2]string{h.addr, "send-proxy-v2"}, [2]string{sipTCP, "send-proxy-v2"})
	v1, v2, sipProxy := px[0], px[1], px[2]

	t.Run("PROXY v1 and v2 on /ws: each client seen and counted as itself", func(t *testing.T) {
		for _, tt := range []struct{ src, via string }{{"127.0.0.2", v1}, {"127.0.0.3", v2}} {
			c, code := dialFrom(t, tt.src, tt.via, nil)
			if code != http.StatusSwitchingProtocols {
				t.Fatalf("%s: HTTP %d", tt.src, code)
			}
			if got := receivedBy(t, c); got != tt.src {
				t.Fatalf("%s is seen as %s", tt.src, got)
			}
		}
		if _, code := dialFrom(t, "127.0.0.2", v2, nil); code != http.StatusServiceUnavailable {
			t.Fatalf("127.0.0.2's second connection: HTTP %d, want 503 (limit 1 per client)", code)
		}
	})
	t.Run("PROXY v2 on SIP-TCP: the PBX is trusted by its own address", func(t *testing.T) {
		for _, tt := range []struct {
			src  string
			code int
		}{{"127.0.0.6", 200}, {"127.0.0.7", 401}} {
			if res := tcpPublish(t, tt.src, sipProxy); res.StatusCode != tt.code {
				t.Errorf("PUBLISH from %s through HAProxy: %d %s, want %d", tt.src, res.StatusCode, res.Reason, tt.code)
			}
		}
	})
}

// tcpPublish sends the Kamailio-shaped PUBLISH over TCP from src to addr.
func tcpPublish(t *testing.T, src, addr string) *sip.Response {
	t.Helper()
	msg, err := os.ReadFile(filepath.Join("..", "..", "testdata", "pbx", "kamailio", "06-dialog-1001-early.sip")) // captured from Kamailio 5.6
	if err != nil {
		t.Fatal(err)
	}
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msg = bytes.ReplaceAll(msg, []byte("hub.test"), []byte(testDomain))
	msg = regexp.MustCompile(`Via: SIP/2.0/UDP [^;\r\n]+;branch=[^;\r\n]+`).ReplaceAll(msg,
		[]byte("Via: SIP/2.0/TCP "+conn.LocalAddr().String()+";branch="+sip.GenerateBranch()))
	if head, body, ok := bytes.Cut(msg, []byte("\r\n\r\n")); ok {
		head = regexp.MustCompile(`Content-Length: \d+`).ReplaceAll(head, []byte("Content-Length: "+strconv.Itoa(len(body))))
		msg = append(append(head, "\r\n\r\n"...), body...)
	}
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write(msg); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65535)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	m, err := sip.ParseMessage(buf[:n])
	if err != nil {
		t.Fatalf("unparsable answer: %v\n%s", err, buf[:n])
	}
	return m.(*sip.Response)
}
