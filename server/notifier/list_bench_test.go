package notifier

import (
	"strconv"
	"testing"

	"github.com/presencehub/presencehub/compositor"
)

// The hub's own cost of a list NOTIFY body for a 500-member dialog list,
// without sockets (server.BenchmarkList500 measures the whole path):
//
//	go test -run '^$' -bench BenchmarkListRender -benchmem ./server/notifier/
func BenchmarkListRender(b *testing.B) {
	n := New(Config{ViaHost: "bench.test"})
	p := &Provider{Name: "dialog-info", Event: "dialog", ContentType: "application/dialog-info+xml",
		Render: func(v compositor.View, _ string) (Body, error) {
			d, at := v.Template()
			return Body{Data: d, VersionAt: at}, nil
		}}
	l := &listState{uri: "sip:big@bench.test", mprov: p}
	l.init(n)
	var specs []memberSpec
	for i := range 500 {
		specs = append(specs, memberSpec{aor: "sip:" + strconv.Itoa(3000+i) + "@bench.test"})
	}
	l.setMembersLocked(specs)
	for _, m := range l.members {
		d, at := compositor.View{Resource: m.aor, Event: "dialog"}.Template()
		m.cur, m.rev = Body{Data: d, VersionAt: at}, 1
	}
	l.renderLocked("") // first (full) NOTIFY
	b.Run("OneChange", func(b *testing.B) {
		b.ReportAllocs()
		var size int
		for i := 0; i < b.N; i++ {
			m := l.members[i%500]
			m.dirty, m.sent = true, nil
			l.ndirty = 1
			body, _ := l.renderLocked("")
			size = len(body.Data)
		}
		b.ReportMetric(float64(size), "body-B")
	})
	b.Run("FullState", func(b *testing.B) {
		b.ReportAllocs()
		var size int
		for i := 0; i < b.N; i++ {
			l.full = true
			body, _ := l.renderLocked("")
			size = len(body.Data)
		}
		b.ReportMetric(float64(size), "body-B")
	})
}
