package notifier

import (
	"container/heap"
	"sync"
	"time"
)

// expiryQueue ends subscriptions whose expiry passed (RFC 6665 §4.2.2,
// reason timeout) with one timer per notifier: a min-heap of subscriptions
// by deadline, the timer armed for the earliest. A subscription holds its
// deadline and heap position instead of a time.Timer and its closure.
type expiryQueue struct {
	mu    sync.Mutex
	h     expiryHeap
	timer *time.Timer
	armed int64 // deadline the timer is set for (Unix ns); 0: not armed
}

type expiryHeap []*subscription

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].deadline < h[j].deadline }
func (h expiryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].expAt, h[j].expAt = int32(i+1), int32(j+1)
}
func (h *expiryHeap) Push(x any) {
	s := x.(*subscription)
	s.expAt = int32(len(*h) + 1)
	*h = append(*h, s)
}
func (h *expiryHeap) Pop() any {
	old := *h
	s := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	s.expAt = 0
	return s
}

// schedule (re)sets when s expires.
func (q *expiryQueue) schedule(s *subscription, at time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	s.deadline = at.UnixNano()
	if s.expAt == 0 {
		heap.Push(&q.h, s)
	} else {
		heap.Fix(&q.h, int(s.expAt-1))
	}
	q.armLocked()
}

// reschedule moves the expiry of s if it is queued.
func (q *expiryQueue) reschedule(s *subscription, at time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if s.expAt == 0 {
		return
	}
	s.deadline = at.UnixNano()
	heap.Fix(&q.h, int(s.expAt-1))
	q.armLocked()
}

// cancel takes s out of the queue (it ended otherwise).
func (q *expiryQueue) cancel(s *subscription) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if s.expAt != 0 {
		heap.Remove(&q.h, int(s.expAt-1))
	}
}

// armLocked sets the timer for the earliest deadline when it is not
// already set for it or earlier (a later firing re-arms).
func (q *expiryQueue) armLocked() {
	if len(q.h) == 0 {
		return
	}
	first := q.h[0].deadline
	if q.armed != 0 && q.armed <= first {
		return
	}
	q.armed = first
	d := time.Until(time.Unix(0, first))
	if q.timer == nil {
		q.timer = time.AfterFunc(d, q.fire)
	} else {
		q.timer.Reset(d)
	}
}

// fire terminates every subscription whose deadline passed.
func (q *expiryQueue) fire() {
	now := time.Now().UnixNano()
	var due []*subscription
	q.mu.Lock()
	for len(q.h) > 0 && q.h[0].deadline <= now {
		due = append(due, heap.Pop(&q.h).(*subscription))
	}
	q.armed = 0
	q.armLocked()
	q.mu.Unlock()
	for _, s := range due {
		s.terminate(ReasonTimeout)
	}
}
