package notifier

import "sync"

// bufPool keeps the memory of NOTIFYs their connection has written
// (flow.RequestRecycle), so that building the next one allocates nothing:
// a free list, taken by the fan-out and given back by the connections'
// writers. It keeps at most maxPooledBufs buffers of at most
// maxPooledBuf bytes each.
type bufPool struct {
	mu   sync.Mutex
	free [][]byte
}

const (
	maxPooledBufs = 256
	maxPooledBuf  = 16 << 10
	// bufRound rounds new buffers up, so that one fits the next NOTIFYs
	// of about the same size.
	bufRound = 512
)

// get returns an empty buffer of capacity n at least.
func (p *bufPool) get(n int) []byte {
	p.mu.Lock()
	if k := len(p.free); k > 0 {
		b := p.free[k-1]
		p.free[k-1] = nil
		p.free = p.free[:k-1]
		p.mu.Unlock()
		if cap(b) >= n {
			return b[:0]
		}
		// Too small for this one (a list's NOTIFY): left to the collector.
	} else {
		p.mu.Unlock()
	}
	return make([]byte, 0, (n+bufRound-1)/bufRound*bufRound)
}

// put gives b back once nothing reads it any more.
func (p *bufPool) put(b []byte) {
	if cap(b) > maxPooledBuf {
		return
	}
	p.mu.Lock()
	if len(p.free) < maxPooledBufs {
		p.free = append(p.free, b)
	}
	p.mu.Unlock()
}
