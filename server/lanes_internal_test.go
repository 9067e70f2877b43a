package server

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// The reader waits while max PUBLISHes are unanswered, one resource's
// PUBLISHes run one at a time in the order added, and every lane ends.
func TestLanes_BoundedInOrderPerKey_LanesEnd(t *testing.T) {
	const limit = 4
	release := make(chan struct{})
	var mu sync.Mutex
	running, most := 0, 0
	order := map[string][]int{}
	l := newLanes(limit, func(j publishJob) {
		mu.Lock()
		running++
		most = max(most, running)
		mu.Unlock()
		<-release
		mu.Lock()
		running--
		order[j.req.user] = append(order[j.req.user], int(j.req.req.CSeq().SeqNo))
		mu.Unlock()
	})
	added := make(chan int, 100)
	go func() {
		for i := range 40 {
			l.add(fmt.Sprint(i%3), publishJob{req: testPublish(fmt.Sprint(i%3), i)})
			added <- i
		}
		close(added)
	}()
	// Nothing is answered yet: the reader stops after limit PUBLISHes.
	for range limit {
		<-added
	}
	select {
	case i := <-added:
		t.Fatalf("PUBLISH %d read while %d were unanswered", i, limit)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	for range added {
	}
	l.wait()
	if most > 3 {
		t.Fatalf("%d PUBLISHes ran at once for 3 resources", most)
	}
	for key, seqs := range order {
		for i := 1; i < len(seqs); i++ {
			if seqs[i] < seqs[i-1] {
				t.Fatalf("resource %s ran %v: out of order", key, seqs)
			}
		}
	}
	if len(l.lanes) != 0 || len(l.ready) != 0 || l.workers != 0 || l.n != 0 {
		t.Fatalf("%d lanes, %d ready, %d workers, %d PUBLISHes left after wait", len(l.lanes), len(l.ready), l.workers, l.n)
	}
}

// testPublish is a PUBLISH to user with CSeq seq.
func testPublish(user string, seq int) *publishReq {
	req := sip.NewRequest(sip.PUBLISH, sip.Uri{Scheme: "sip", User: user, Host: benchDomain})
	req.AppendHeader(&sip.CSeqHeader{SeqNo: uint32(seq), MethodName: sip.PUBLISH})
	return sipPublish(req)
}
