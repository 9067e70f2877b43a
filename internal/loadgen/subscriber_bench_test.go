package loadgen

import (
	"testing"
	"time"

	"github.com/presencehub/presencehub/compositor/dialoginfo"
)

// benchSubscriber is a subscriber socket with subs subscriptions (to
// resources 0..subs-1) and, for each, per NOTIFYs as the hub sends them:
// the hub's header lines, the publisher's dialog re-rendered by the hub's
// renderer with its state stamp, version +1 and a newer state each time.
func benchSubscriber(tb testing.TB, subs, per int) (*subscriber, [][]byte) {
	tb.Helper()
	r := &run{cfg: Config{Domain: "bench.test", Prefix: "bench", Resources: subs}, id: "r1", start: time.Now()}
	r.prepare()
	s := &subscriber{r: r, subs: make([]subscription, subs), sock: &wsConn{}}
	for k := range s.subs {
		s.subs[k] = subscription{resource: k, callID: s.callID(k), accepted: true}
	}
	var msgs [][]byte
	for j := range per {
		for k := range s.subs {
			pub := appendDialogBody(nil, r.cfg.Domain, r.user(k), uint64(j+1), int64(j+1)*1000)
			doc, err := dialoginfo.Parse(pub, dialoginfo.Limits{})
			if err != nil {
				tb.Fatal(err)
			}
			doc.Version = uint64(j)
			doc.Dialogs[0].Since = time.Unix(1_700_000_000+int64(j), 0)
			body := string(doc.AppendXML(nil))
			raw := "NOTIFY sip:bench-s0@abc.invalid;transport=ws SIP/2.0\r\n" +
				"Via: SIP/2.0/WS bench.test;branch=z9hG4bK" + itoa(j*subs+k) + "abcdefgh\r\n" +
				"Max-Forwards: 70\r\n" +
				"From: <" + r.aor(k) + ">;tag=hubtag" + itoa(k) + "\r\n" +
				"To: <sip:bench-s0@bench.test>;tag=mytag\r\n" +
				"Call-ID: " + s.subs[k].callID + "\r\n" +
				"Contact: <sip:presencehub@bench.test;transport=ws>\r\n" +
				"Event: dialog\r\n" +
				"CSeq: " + itoa(j+1) + " NOTIFY\r\n" +
				"Subscription-State: active;expires=3599\r\n" +
				"Content-Type: application/dialog-info+xml\r\n" +
				"Content-Length: " + itoa(len(body)) + "\r\n\r\n" + body
			msgs = append(msgs, []byte(raw))
		}
	}
	return s, msgs
}

// reset forgets what s's subscriptions have seen (the NOTIFYs start over).
func (s *subscriber) reset() {
	for k := range s.subs {
		st := &s.subs[k]
		st.nextVer, st.lastSeq, st.lastHash, st.notifies = 0, 0, 0, 0
	}
	s.sock.wbuf = s.sock.wbuf[:0]
}

// BenchmarkSubscriberNotify is the generator's work for one NOTIFY on a
// subscriber socket, apart from the socket's read(2) and write(2): parse,
// answer 200 (masked frame queued), check version, duplicate, order,
// entity, record the latency. cpu-ns/op is CPU time (getrusage) per NOTIFY.
func BenchmarkSubscriberNotify(b *testing.B) {
	s, msgs := benchSubscriber(b, 100, 20)
	b.ReportAllocs()
	start := selfCPU()
	i := 0
	for b.Loop() {
		if i == len(msgs) {
			s.reset()
			i = 0
		}
		s.handle(msgs[i])
		i++
		if len(s.sock.wbuf) > 32<<10 {
			s.sock.wbuf = s.sock.wbuf[:0]
		}
	}
	b.ReportMetric(float64(selfCPU()-start)/float64(b.N), "cpu-ns/op")
	if s.c != (checks{}) {
		b.Fatalf("checks = %+v", s.c)
	}
}

func TestBenchSubscriber_CleanNotifiesPassEveryCheck(t *testing.T) {
	s, msgs := benchSubscriber(t, 10, 5)
	for range 2 {
		for _, m := range msgs {
			s.handle(m)
		}
		if s.c != (checks{}) {
			t.Fatalf("checks = %+v", s.c)
		}
		for k := range s.subs {
			if st := &s.subs[k]; st.notifies != 5 || st.lastSeq != 5 || st.nextVer != 5 {
				t.Fatalf("subscription %d: %d NOTIFYs, seq %d, next version %d", k, st.notifies, st.lastSeq, st.nextVer)
			}
		}
		s.reset()
	}
}
