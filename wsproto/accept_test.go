package wsproto

import (
	"net/http"
	"strings"
	"testing"
)

func TestAccept_Subprotocol(t *testing.T) {
	s := startServer(t, Options{}, nil)
	tests := []struct {
		name      string
		protocols string // Sec-WebSocket-Protocol offered; "" = header absent
		want      int
		wantProto string
	}{
		{"no subprotocol offered returns 400", "", http.StatusBadRequest, ""},
		{"other subprotocol returns 400", "chat", http.StatusBadRequest, ""},
		{"sip offered is echoed", "sip", http.StatusSwitchingProtocols, "sip"},
		{"sip among several is echoed", "chat, sip", http.StatusSwitchingProtocols, "sip"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			extra := map[string]string{}
			if tt.protocols != "" {
				extra["Sec-WebSocket-Protocol"] = tt.protocols
			}
			code, h := handshake(t, s, extra)
			if code != tt.want {
				t.Fatalf("status = %d, want %d", code, tt.want)
			}
			if got := h.Get("Sec-WebSocket-Protocol"); got != tt.wantProto {
				t.Errorf("Sec-WebSocket-Protocol = %q, want %q", got, tt.wantProto)
			}
			if code != http.StatusSwitchingProtocols && h.Get("Upgrade") != "" {
				t.Errorf("refused handshake was upgraded: Upgrade = %q", h.Get("Upgrade"))
			}
		})
	}
}

func TestAccept_NotAWebSocketRequest_LeftToWebSocketLibrary(t *testing.T) {
	s := startServer(t, Options{}, nil)
	resp, err := http.Get(s.hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUpgradeRequired {
		t.Errorf("status = %d, want %d", resp.StatusCode, http.StatusUpgradeRequired)
	}
	http.DefaultClient.CloseIdleConnections()
}

func TestAccept_Origin(t *testing.T) {
	tests := []struct {
		name     string
		patterns []string
		origin   string // "" = header absent; "SAME" = the server's own origin
		want     int
	}{
		{"no Origin (non-browser) allowed", nil, "", http.StatusSwitchingProtocols},
		{"same origin allowed by default", nil, "SAME", http.StatusSwitchingProtocols},
		{"cross origin refused by default", nil, "https://app.example.com", http.StatusForbidden},
		{"cross origin in allow-list allowed", []string{"*.example.com"}, "https://app.example.com", http.StatusSwitchingProtocols},
		{"cross origin outside allow-list refused", []string{"*.example.com"}, "https://evil.example.org", http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, Options{OriginPatterns: tt.patterns}, nil)
			extra := map[string]string{"Sec-WebSocket-Protocol": "sip"}
			switch tt.origin {
			case "":
			case "SAME":
				extra["Origin"] = s.hs.URL
			default:
				extra["Origin"] = tt.origin
			}
			code, _ := handshake(t, s, extra)
			if code != tt.want {
				t.Errorf("status = %d, want %d", code, tt.want)
			}
		})
	}
}

func TestAccept_RemoteIPFromSocket_IgnoresXForwardedFor(t *testing.T) {
	s := startServer(t, Options{}, nil)
	h := http.Header{}
	h.Set("X-Forwarded-For", "203.0.113.9")
	h.Set("Authorization", "Bearer abc")
	c, err := Dial(readCtx(t), s.url+"/ws?access_token=xyz", h, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(1000, "")
	sc := s.conn(t)
	if got := sc.RemoteIP(); got != "127.0.0.1" {
		t.Errorf("RemoteIP = %q, want 127.0.0.1", got)
	}
	if got := c.RemoteIP(); got != "127.0.0.1" {
		t.Errorf("client RemoteIP = %q", got)
	}
	if !strings.HasPrefix(s.url, "ws://127.0.0.1:") {
		t.Errorf("test server not on 127.0.0.1: %s", s.url)
	}
}
