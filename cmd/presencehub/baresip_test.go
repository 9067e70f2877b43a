package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// baresip (Debian's package) publishes its presence over plain UDP to the
// hub's --sip-addr: first with <basic>unknown</basic> (accepted as a status
// without basic, the lamp is idle rather than offline), then open and closed
// as its presence_online/presence_offline commands say. A WebSocket watcher
// sees each state.
func TestBaresip_PublishesPresenceOverUDP_WatcherSeesEachState(t *testing.T) {
	requirePeer(t, "PRESENCEHUB_REQUIRE_BARESIP", "baresip")
	hubSIP := "127.0.0.1:" + strconv.Itoa(freeSIPPort(t))
	h := startHub(t, "PRESENCEHUB_SIP_ADDR="+hubSIP, "PRESENCEHUB_LOG_LEVEL=debug")
	h.waitLog("plain SIP for PBXs")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w := newLampWatcher(t, ctx, "ws://"+h.addr+"/ws", mint(t, "console", nil), "1001")
	w.waitTuples(t, "1001", "none=closed", 5*time.Second)

	b := startBaresip(t, "1001", hubSIP)
	w.waitTuples(t, "1001", "t4109=", 10*time.Second) // <basic>unknown</basic>: no status
	w.waitLamp(t, "1001", "idle", 5*time.Second)
	b.command(t, "presence_online")
	w.waitTuples(t, "1001", "t4109=open", 5*time.Second)
	b.command(t, "presence_offline")
	w.waitTuples(t, "1001", "t4109=closed", 5*time.Second)
	w.waitLamp(t, "1001", "offline", 5*time.Second)
	// What the watcher saw is taken before baresip stops. (On SIGTERM
	// baresip 1.0 sends its removal and a status PUBLISH with the same
	// entity-tag at once; the second is answered 412 as RFC 3903 §6 step 2
	// says, and baresip then publishes afresh: what follows is baresip's
	// doing, and its NOTIFYs may arrive before the watcher is read after the
	// stop.)
	tuples, lamps := w.presenceTuples("1001"), w.lamps("1001")
	b.stop(t)

	if want := []string{"none=closed", "t4109=", "t4109=open", "t4109=closed"}; !slices.Equal(tuples[:min(len(tuples), len(want))], want) {
		t.Errorf("presence NOTIFYs %q, want %q", tuples, want)
	}
	if want := []string{"offline", "idle", "offline"}; !slices.Equal(lamps, want) {
		t.Errorf("lamps %v, want %v", lamps, want)
	}
	t.Logf("1001: %s", strings.Join(lamps, " → "))
}

// baresip is a running baresip with its ctrl_tcp control socket.
type baresip struct {
	cmd    *exec.Cmd
	ctrl   net.Conn
	out    *logBuffer
	exited chan struct{}
}

// startBaresip runs baresip headless: its own config directory, no audio
// device, account ext@hub.test publishing presence (pubint) through the hub
// as outbound proxy, no REGISTER (regint=0), commands over ctrl_tcp.
func startBaresip(t *testing.T, ext, hubSIP string) *baresip {
	t.Helper()
	dir := t.TempDir()
	sipPort, ctrlPort := freeUDPPort(t), freeSIPPort(t)
	config := fmt.Sprintf(`poll_method epoll
sip_listen 127.0.0.1:%d
sip_trans_def udp
audio_player aubridge,nil
audio_source aubridge,nil
module_path /usr/lib/baresip/modules
module account.so
module g711.so
module presence.so
module ctrl_tcp.so
ctrl_tcp_listen 127.0.0.1:%d
`, sipPort, ctrlPort)
	accounts := fmt.Sprintf("<sip:%s@%s;transport=udp>;regint=0;pubint=600;outbound=\"sip:%s;transport=udp\"\n", ext, testDomain, hubSIP)
	for name, data := range map[string]string{"config": config, "accounts": accounts, "contacts": ""} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b := &baresip{out: &logBuffer{}, exited: make(chan struct{})}
	b.cmd = exec.Command("baresip", "-f", dir)
	b.cmd.Dir = dir
	b.cmd.Stdout, b.cmd.Stderr = b.out, b.out
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = b.cmd.Wait(); close(b.exited) }()
	t.Cleanup(func() {
		if b.ctrl != nil {
			b.ctrl.Close()
		}
		select {
		case <-b.exited:
		default:
			_ = b.cmd.Process.Kill()
			<-b.exited
		}
		if t.Failed() {
			t.Logf("baresip output:\n%s", b.out.String())
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(ctrlPort))
		if err == nil {
			b.ctrl = c
			return b
		}
		if time.Now().After(deadline) {
			t.Fatalf("baresip's control socket: %v\n%s", err, b.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// command runs a baresip command over ctrl_tcp (a netstring holding JSON).
func (b *baresip) command(t *testing.T, name string) {
	t.Helper()
	req, _ := json.Marshal(map[string]string{"command": name, "token": name})
	if _, err := fmt.Fprintf(b.ctrl, "%d:%s,", len(req), req); err != nil {
		t.Fatal(err)
	}
	_ = b.ctrl.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	n, err := b.ctrl.Read(buf)
	if err != nil {
		t.Fatalf("baresip %s: %v", name, err)
	}
	_, body, _ := strings.Cut(string(buf[:n]), ":")
	var res struct{ OK bool }
	if err := json.Unmarshal([]byte(strings.TrimSuffix(body, ",")), &res); err != nil || !res.OK {
		t.Fatalf("baresip %s: %s (%v)", name, buf[:n], err)
	}
}

// stop ends baresip as a service manager would (SIGTERM) and waits.
func (b *baresip) stop(t *testing.T) {
	t.Helper()
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("baresip still running 10s after SIGTERM")
	}
}
