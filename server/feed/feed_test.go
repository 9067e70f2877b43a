package feed_test

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/presencehub/presencehub/internal/sipclient"
	"github.com/presencehub/presencehub/server"
	"github.com/presencehub/presencehub/server/auth"
	"github.com/presencehub/presencehub/server/servertest"
)

func TestFeed_SnapshotFirstThenKeepalive(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{HTTPReadTimeout: 500 * time.Millisecond, Configure: func(c *server.Config) {
		c.FeedKeepalive = 200 * time.Millisecond
	}})
	pub := newPublisher(t, hub)
	pub.publish("1001", "presence", pidfDoc("1001", "open", "at the desk", false))
	pub.publish("1001", "dialog", dialogInfo("1001", dialog("c1", "recipient", "early", "sip:2001@hub.test", "Alice")))
	pub.publish("1003", "presence", pidfDoc("1003", "open", "", true))
	pub.publish("1003", "message-summary", "Messages-Waiting: yes\r\nVoice-Message: 2/8 (1/0)\r\nFax-Message: 1/0\r\n")

	before := time.Now().UTC().Add(-time.Second)
	s := open(t, hub, "ext=1001,1002,1003,1001", nil)
	snap, _ := s.snapshot()
	if len(snap.Resources) != 3 {
		t.Fatalf("snapshot has %d resources, want 3 (1001 once): %+v", len(snap.Resources), snap.Resources)
	}
	r := snap.Resources[0]
	if r.Ext != "1001" || r.Resource != "sip:1001@hub.test" || r.Lamp != "ringing" || r.Peer != "Alice (2001)" {
		t.Errorf("1001: %+v, want ringing with peer Alice (2001)", r)
	}
	if len(r.Dialogs) != 1 || r.Dialogs[0].Direction != "recipient" || r.Dialogs[0].State != "early" ||
		r.Dialogs[0].RemoteIdentity != "sip:2001@hub.test" || r.Dialogs[0].RemoteDisplay != "Alice" ||
		r.Dialogs[0].Start.Before(before) || r.Dialogs[0].Start.After(time.Now().Add(time.Second)) {
		t.Errorf("1001 dialogs: %+v", r.Dialogs)
	}
	if r.Presence == nil || r.Presence.Basic != "open" || r.Presence.Note != "at the desk" {
		t.Errorf("1001 presence: %+v", r.Presence)
	}
	if r := snap.Resources[1]; r.Ext != "1002" || r.Lamp != "offline" || r.Presence == nil || r.Presence.Basic != "closed" || r.Dialogs != nil {
		t.Errorf("1002 (nothing published): %+v, want offline, presence closed, no dialogs", r)
	}
	if r := snap.Resources[2]; r.Lamp != "busy" || len(r.Presence.Activities) != 1 || r.Presence.Activities[0] != "on-the-phone" {
		t.Errorf("1003 (on the phone, presence only): %+v, want busy", r)
	}
	if m := snap.Resources[2].Messages; m == nil || !m.Waiting || m.New != 3 || m.Old != 8 {
		t.Errorf("1003 messages %+v, want waiting, 3 new, 8 old", m)
	}
	if m := snap.Resources[0].Messages; m != nil {
		t.Errorf("1001 messages %+v: nothing published, want none", m)
	}
	if ev := s.next(true); !ev.Comment || ev.Data != "keepalive" {
		t.Errorf("after the snapshot: %+v, want a keepalive comment", ev)
	}
	// The stream outlives the HTTP read timeout (500 ms here) and still
	// carries changes.
	time.Sleep(time.Second)
	pub.publish("1002", "presence", pidfDoc("1002", "open", "", false))
	if st, _ := s.state(); st.Ext != "1002" || st.Lamp != "idle" {
		t.Errorf("after the read timeout: %+v, want 1002 idle", st)
	}
}

func TestFeed_OneEventPerRealChange(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{})
	pub := newPublisher(t, hub)
	pub.publish("1001", "presence", pidfDoc("1001", "open", "", false))
	both := open(t, hub, "ext=1001", nil)
	dialogs := open(t, hub, "ext=1001&event=dialog", nil)
	snapBoth, _ := both.snapshot()
	snapDialogs, _ := dialogs.snapshot()
	if snapBoth.Resources[0].Lamp != "idle" || snapDialogs.Resources[0].Presence != nil {
		t.Fatalf("snapshots: %+v / %+v", snapBoth.Resources[0], snapDialogs.Resources[0])
	}
	last := snapBoth.ID

	steps := []struct {
		event, body string
		lamp        string // "" = no event for a dialog-only client either
		presence    bool   // only a client of presence sees it
	}{
		{"dialog", dialogInfo("1001", dialog("c1", "recipient", "early", "sip:2001@hub.test", "")), "ringing", false},
		{"dialog", dialogInfo("1001", dialog("c1", "recipient", "early", "sip:2001@hub.test", "")), "", false}, // same state again
		{"presence", pidfDoc("1001", "open", "lunch at 12", false), "ringing", true},                           // a note: not a dialog change
		{"presence", pidfDoc("1001", "open", "lunch at 12", false), "", true},                                  // same again
		{"dialog", dialogInfo("1001", dialog("c1", "recipient", "confirmed", "sip:2001@hub.test", "")), "busy", false},
		{"dialog", dialogInfo("1001"), "idle", false},
	}
	for i, st := range steps {
		pub.publish("1001", st.event, st.body)
		if st.lamp == "" {
			continue
		}
		got, ev := both.state()
		id, _ := strconv.ParseUint(ev.ID, 10, 64)
		if got.Lamp != st.lamp || id <= last {
			t.Fatalf("step %d: lamp %q id %d (after %d), want %q with a higher id", i, got.Lamp, id, last, st.lamp)
		}
		last = id
		if st.presence {
			continue
		}
		if got, _ := dialogs.state(); got.Lamp != st.lamp || got.Presence != nil {
			t.Fatalf("step %d, dialog-only client: %+v, want lamp %q without presence", i, got, st.lamp)
		}
	}
	both.none(300 * time.Millisecond)
	dialogs.none(0)
}

func TestFeed_Authorization(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{Configure: func(c *server.Config) {
		c.MaxSubsPerConn = 3
		c.OriginPatterns = []string{"board.example.com"}
	}})
	only1001 := hub.Token("agent", func(c *auth.Claims) { c.Subscribe = []string{"1001"} })
	all := hub.Token("wallboard", nil)
	expired := hub.Token("wallboard", func(c *auth.Claims) { c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-time.Minute)) })
	tests := []struct {
		name   string
		query  string
		hdr    map[string]string
		method string
		code   int
		want   string // in the body
	}{
		{"no token", "ext=1001", nil, "", 401, "token required"},
		{"invalid token", "ext=1001&access_token=nope", nil, "", 401, "invalid token"},
		{"expired token", "ext=1001&access_token=" + expired, nil, "", 401, "invalid token"},
		{"Bearer header", "ext=1001", map[string]string{"Authorization": "Bearer " + only1001}, "", 200, ""},
		{"allowed resource", "ext=1001&access_token=" + only1001, nil, "", 200, ""},
		{"a resource it may not watch refuses the request", "ext=1001,1002&access_token=" + only1001, nil, "", 403, "may not watch 1002"},
		{"nothing named", "access_token=" + all, nil, "", 400, "?ext="},
		{"bad extension", "ext=10%0a01&access_token=" + all, nil, "", 400, "invalid extension"},
		{"unknown event", "ext=1001&event=dialog,reg&access_token=" + all, nil, "", 400, "unknown event package reg"},
		{"too many resources", "ext=1,2,3,4&access_token=" + all, nil, "", 400, "at most 3 per feed"},
		{"unknown stored list", "list=sales&access_token=" + all, nil, "", 404, "no stored list sales"},
		{"POST", "ext=1001&access_token=" + all, nil, http.MethodPost, 405, "not allowed"},
		{"foreign origin", "ext=1001&access_token=" + all, map[string]string{"Origin": "https://evil.example"}, "", 403, "origin"},
		{"allowed origin", "ext=1001&access_token=" + all, map[string]string{"Origin": "https://board.example.com"}, "", 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = http.MethodGet
			}
			req, _ := http.NewRequest(method, feedURL(hub, tt.query, ""), nil)
			for k, v := range tt.hdr {
				req.Header.Set(k, v)
			}
			res, err := plain.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			if res.StatusCode != tt.code {
				body, _ := io.ReadAll(res.Body)
				t.Fatalf("%d %s, want %d", res.StatusCode, body, tt.code)
			}
			if tt.code == 200 {
				if o := tt.hdr["Origin"]; o != "" && res.Header.Get("Access-Control-Allow-Origin") != o {
					t.Errorf("Access-Control-Allow-Origin %q, want %q", res.Header.Get("Access-Control-Allow-Origin"), o)
				}
				return
			}
			body, _ := io.ReadAll(res.Body)
			if !strings.Contains(string(body), tt.want) {
				t.Errorf("body %s, want it to say %q", body, tt.want)
			}
			if tt.code == 401 && !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("WWW-Authenticate %q", res.Header.Get("WWW-Authenticate"))
			}
		})
	}
}

func TestFeed_ResumeWithLastEventID(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{Configure: func(c *server.Config) { c.FeedReplay = 8 }})
	pub := newPublisher(t, hub)
	s := open(t, hub, "ext=1001,1002", nil)
	snap, ev := s.snapshot()
	pub.publish("1001", "dialog", dialogInfo("1001", dialog("c1", "recipient", "early", "", "")))
	st, ev1 := s.state()
	if st.Lamp != "ringing" {
		t.Fatalf("lamp %q", st.Lamp)
	}
	s.close()

	// Missed while away: 1001 answered, 1002 rings.
	pub.publish("1001", "dialog", dialogInfo("1001", dialog("c1", "recipient", "confirmed", "", "")))
	pub.publish("1002", "dialog", dialogInfo("1002", dialog("c2", "recipient", "early", "", "")))

	t.Run("the missed events, no snapshot", func(t *testing.T) {
		r := open(t, hub, "ext=1001,1002", map[string]string{"Last-Event-ID": ev1.ID})
		a, evA := r.state()
		b, evB := r.state()
		if a.Ext != "1001" || a.Lamp != "busy" || b.Ext != "1002" || b.Lamp != "ringing" || evA.ID <= ev1.ID || evB.ID <= evA.ID {
			t.Fatalf("replay: %s %s (%s), %s %s (%s)", a.Ext, a.Lamp, evA.ID, b.Ext, b.Lamp, evB.ID)
		}
		r.none(200 * time.Millisecond)
	})
	t.Run("from the snapshot's id", func(t *testing.T) {
		r := open(t, hub, "ext=1001,1002", map[string]string{"Last-Event-ID": ev.ID})
		for _, want := range []string{"ringing", "busy", "ringing"} {
			if st, _ := r.state(); st.Lamp != want {
				t.Fatalf("replay after snapshot %d: %q, want %q", snap.ID, st.Lamp, want)
			}
		}
	})
	t.Run("unknown id: fresh snapshot", func(t *testing.T) {
		r := open(t, hub, "ext=1001,1002", map[string]string{"Last-Event-ID": "12345"})
		snap, _ := r.snapshot()
		if snap.Resources[0].Lamp != "busy" || snap.Resources[1].Lamp != "ringing" {
			t.Fatalf("snapshot %+v", snap.Resources)
		}
	})
	t.Run("beyond the replay buffer: fresh snapshot", func(t *testing.T) {
		w := open(t, hub, "ext=1002&event=presence", nil)
		w.snapshot()
		for i := range 10 { // 10 events (each waited for: none coalesced) in a buffer of 8
			pub.publish("1002", "presence", pidfDoc("1002", "open", "note "+strconv.Itoa(i), false))
			if st, _ := w.state(); st.Presence.Note != "note "+strconv.Itoa(i) {
				t.Fatalf("note %q", st.Presence.Note)
			}
		}
		r := open(t, hub, "ext=1001,1002", map[string]string{"Last-Event-ID": ev1.ID})
		snap, _ := r.snapshot()
		if snap.Resources[1].Presence.Note != "note 9" {
			t.Fatalf("snapshot %+v", snap.Resources[1])
		}
		waitFor(t, "2 resume_gap snapshots counted", func() bool {
			return metric(t, hub, "presencehub_feed_snapshots_total", `reason="resume_gap"`) == 2
		})
	})
}

func TestFeed_SlowClientGetsAFreshSnapshot(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{Configure: func(c *server.Config) { c.FeedQueue = 4 }})
	d := newDirect(t, hub)
	s := openPaused(t, slowClient(), feedURL(hub, "ext=1001", hub.Token("wallboard", nil)), nil)
	// The client reads nothing while changes of about 50 KiB each are
	// published: the hub's writes block once the socket buffers (4 MiB at
	// most on Linux) are full, and its queue fills.
	big := strings.Repeat("x", 1200)
	changes := 0
	for changes < 2000 && (changes%10 != 0 || metric(t, hub, "presencehub_feed_drops_total", "") == 0) {
		var dl []string
		for j := range 40 {
			dl = append(dl, dialog("d"+strconv.Itoa(j), "recipient", "confirmed", "sip:"+strconv.Itoa(changes)+"@hub.test", big))
		}
		d.publish("1001", "dialog", dialogInfo("1001", dl...))
		changes++
	}
	if metric(t, hub, "presencehub_feed_drops_total", "") == 0 {
		t.Fatalf("%d changes and the client's queue never overflowed", changes)
	}
	// Now it reads: some events, then a snapshot, ending in the last state.
	close(s.start)
	d.publish("1001", "dialog", dialogInfo("1001", dialog("end", "initiator", "early", "sip:2001@hub.test", "")))
	var snaps, states int
	for {
		ev := s.next(false)
		switch ev.Event {
		case "snapshot":
			snaps++
		case "state":
			states++
		}
		if strings.Contains(ev.Data, `"lamp":"calling"`) {
			break
		}
	}
	if snaps < 2 || states+snaps >= changes+2 {
		t.Errorf("%d snapshots and %d events for %d changes: want the initial snapshot, a fresh one, and fewer events", snaps, states, changes+1)
	}
	waitFor(t, "a slow_client snapshot counted", func() bool {
		return metric(t, hub, "presencehub_feed_snapshots_total", `reason="slow_client"`) >= 1
	})
	s.none(200 * time.Millisecond)
}

func TestFeed_ClosedAtTokenExpiry(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{})
	exp := time.Now().Add(2 * time.Second).Truncate(time.Second).Add(time.Second)
	tok := hub.Token("wallboard", func(c *auth.Claims) { c.ExpiresAt = jwt.NewNumericDate(exp) })
	s := openWith(t, nil, feedURL(hub, "ext=1001", tok), nil)
	s.snapshot()
	ev := s.next(false)
	if ev.Event != "end" || ev.Data != `{"reason":"token expired"}` {
		t.Fatalf("%+v, want end: token expired", ev)
	}
	if d := time.Since(exp); d < 0 || d > time.Second {
		t.Errorf("ended %v after exp", d)
	}
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		t.Fatal("stream still open after the end event")
	}
	waitFor(t, "a close by token_expired counted", func() bool {
		return metric(t, hub, "presencehub_feed_closed_total", `reason="token_expired"`) == 1
	})
}

func TestFeed_Limits(t *testing.T) {
	t.Run("connections per address, shared with /ws", func(t *testing.T) {
		// Two per address: one SIP socket and one stream take both (the
		// HTTP connection bound of the same flag counts only the stream).
		hub := servertest.Start(t, servertest.Options{Configure: func(c *server.Config) { c.MaxConnsPerIP = 2 }})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		hub.Dial(ctx, "1009", sipclient.Options{})
		s := open(t, hub, "ext=1001", nil)
		s.snapshot()
		res := get(t, nil, feedURL(hub, "ext=1002", hub.Token("wallboard", nil)), nil)
		res.Body.Close()
		if res.StatusCode != 503 || res.Header.Get("Retry-After") == "" {
			t.Fatalf("second stream: %d, want 503 with Retry-After", res.StatusCode)
		}
		s.close()
		waitFor(t, "the slot is free", func() bool {
			res, err := plain.Get(feedURL(hub, "ext=1002", hub.Token("wallboard", nil)))
			if err != nil {
				return false
			}
			res.Body.Close()
			return res.StatusCode == 200
		})
	})
	t.Run("resources per user over its streams", func(t *testing.T) {
		hub := servertest.Start(t, servertest.Options{Configure: func(c *server.Config) { c.MaxSubsPerUser = 3 }})
		open(t, hub, "ext=1001,1002", nil).snapshot()
		res := get(t, nil, feedURL(hub, "ext=1003,1004", hub.Token("wallboard", nil)), nil)
		res.Body.Close()
		if res.StatusCode != 503 {
			t.Fatalf("over the user's limit: %d, want 503", res.StatusCode)
		}
		open(t, hub, "ext=1003", nil).snapshot()                                                 // within it
		openWith(t, nil, feedURL(hub, "ext=1004,1005", hub.Token("other", nil)), nil).snapshot() // another user
	})
}

func TestFeed_ShutdownEndsStreams(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{})
	s := open(t, hub, "ext=1001", nil)
	s.snapshot()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- hub.Shutdown(ctx) }()
	if ev := s.next(false); ev.Event != "end" || !strings.Contains(ev.Data, "shutting down") {
		t.Fatalf("%+v, want end: shutting down", ev)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestFeed_StoredListMembersTheTokenMayNotWatchAreRejected(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{})
	body := `{"event": "dialog", "members": ["1001", "1002", "sip:1003@elsewhere.test", "1001"]}`
	req, _ := http.NewRequest(http.MethodPut, hub.URL+"/api/lists/reception", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+hub.Token("admin", func(c *auth.Claims) { c.Admin = true }))
	res, err := plain.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode/100 != 2 {
		t.Fatalf("PUT list: %d", res.StatusCode)
	}
	pub := newPublisher(t, hub)
	pub.publish("1001", "dialog", dialogInfo("1001", dialog("c1", "recipient", "early", "", "")))
	pub.publish("1002", "dialog", dialogInfo("1002", dialog("c2", "recipient", "early", "", "")))

	tok := hub.Token("agent", func(c *auth.Claims) { c.Subscribe = []string{"1001"} })
	s := openWith(t, nil, feedURL(hub, "list=reception&ext=1001&event=dialog", tok), nil)
	snap, _ := s.snapshot()
	var got []string
	for _, r := range snap.Resources {
		got = append(got, r.Resource+" "+r.Lamp)
	}
	want := []string{"sip:1001@hub.test ringing", "sip:1002@hub.test rejected", "sip:1003@elsewhere.test rejected"}
	if strings.Join(got, "; ") != strings.Join(want, "; ") {
		t.Fatalf("snapshot %q, want %q", got, want)
	}
	if snap.Resources[1].Dialogs != nil {
		t.Errorf("a rejected member's state leaked: %+v", snap.Resources[1])
	}
	pub.publish("1002", "dialog", dialogInfo("1002", dialog("c2", "recipient", "confirmed", "", ""))) // rejected: no event
	pub.publish("1001", "dialog", dialogInfo("1001", dialog("c1", "recipient", "confirmed", "", "")))
	if st, _ := s.state(); st.Ext != "1001" || st.Lamp != "busy" {
		t.Fatalf("first event %+v, want 1001 busy (nothing of 1002)", st)
	}
	s.none(200 * time.Millisecond)
}

func TestFeed_DialogStartIsTheHubStamp_MovesOnStateChangeOnly(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{})
	pub := newPublisher(t, hub)
	pub.publish("1001", "dialog", dialogInfo("1001", dialog("c1", "recipient", "early", "sip:2001@hub.test", "Alice")))
	s := open(t, hub, "ext=1001", nil)
	snap, _ := s.snapshot()
	ringing := snap.Resources[0].Dialogs[0].Start
	if ringing.IsZero() {
		t.Fatalf("no start: %+v", snap.Resources[0])
	}
	served := hub.Server.Compositor().View(servertest.AOR("1001"), "dialog")
	if len(served.Dialogs) != 1 || !served.Dialogs[0].Since.Equal(ringing) {
		t.Fatalf("feed start %v is not the stamp in the served dialog-info %+v", ringing, served.Dialogs)
	}
	time.Sleep(20 * time.Millisecond)
	pub.publish("1001", "dialog", dialogInfo("1001", dialog("c1", "recipient", "confirmed", "sip:2001@hub.test", "Alice")))
	st, _ := s.state()
	if len(st.Dialogs) != 1 || st.Dialogs[0].State != "confirmed" || !st.Dialogs[0].Start.After(ringing) {
		t.Fatalf("after answer: %+v, want confirmed with a start after %v", st.Dialogs, ringing)
	}
	answered := st.Dialogs[0].Start
	time.Sleep(20 * time.Millisecond)
	pub.publish("1001", "dialog", dialogInfo("1001", dialog("c1", "recipient", "confirmed", "sip:2001@hub.test", "Alice Smith")))
	if st, _ := s.state(); len(st.Dialogs) != 1 || st.Dialogs[0].RemoteDisplay != "Alice Smith" || !st.Dialogs[0].Start.Equal(answered) {
		t.Fatalf("after a change that keeps the state: %+v, want start %v kept", st.Dialogs, answered)
	}
}
