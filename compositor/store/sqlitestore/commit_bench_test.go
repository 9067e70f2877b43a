package sqlitestore

import (
	"context"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/presencehub/presencehub/compositor/store"
)

// BenchmarkCommit is one group commit of a fixed number of Replaces of
// hub-sized publications (distinct ones, spread over 1,000), driven
// directly: the cost per op of a batch of that size, without the
// scheduling that decides batch sizes under load. cpu-ns/op and pages/op
// are per Replace.
func BenchmarkCommit(b *testing.B) {
	for _, size := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			ctx := context.Background()
			s, err := Open(ctx, filepath.Join(b.TempDir(), "c.db"), Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			const n = 1000
			ps := make([]store.Publication, n)
			for i := range ps {
				if ps[i], err = s.Create(ctx, hubPub(i)); err != nil {
					b.Fatal(err)
				}
			}
			ops := make([]*writeOp, size)
			for i := range ops {
				ops[i] = &writeOp{done: make(chan signal, 1)}
			}
			s.wq.mu.Lock()
			s.wq.leader = true // we commit by hand
			s.wq.mu.Unlock()
			defer func() {
				s.wq.mu.Lock()
				s.wq.leader = false
				s.wq.mu.Unlock()
			}()
			var bt batch
			next := 0
			b.ReportAllocs()
			start, err := WALFrames(s)
			if err != nil {
				b.Fatal(err)
			}
			cpu0 := cpuTime()
			b.ResetTimer()
			for done := 0; done < b.N; done += size {
				for i, op := range ops {
					// Stride 7 spreads a batch over the table as random
					// PUBLISHes to 1,000 resources would.
					k := (next + i*7) % n
					p := ps[k]
					p.ETag = fmt.Sprintf("r%025d", done+i)
					p.Expires = time.Now().Add(time.Hour)
					*op = writeOp{kind: opReplace, ctx: ctx, p: p, ifRev: p.Rev, done: op.done}
				}
				next = (next + 1) % n
				s.commit(&bt, ops, nil)
				for i, op := range ops {
					if op.err != nil {
						b.Fatal(op.err)
					}
					<-op.done
					ps[(next-1+n+i*7)%n] = op.res
				}
			}
			b.StopTimer()
			rounds := (b.N + size - 1) / size * size
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(rounds), "cpu-ns/op")
			end, err := WALFrames(s)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(end-start)/float64(rounds), "pages/op")
		})
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
