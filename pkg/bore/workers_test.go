package bore

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A burst of set-ups runs on at most maxWorkers goroutines at once, every one of them runs, at most
// maxIdleWorkers wait afterwards, and all end with the context.
func TestWorkersBoundAndDrain(t *testing.T) {
	var wg sync.WaitGroup
	w := newWorkers(&wg)
	ctx, cancel := context.WithCancel(t.Context())
	const jobs = 5 * maxWorkers
	var running, peak, done atomic.Int32
	for range jobs {
		w.run(ctx, func() {
			n := running.Add(1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			time.Sleep(time.Millisecond)
			running.Add(-1)
			done.Add(1)
		})
	}
	eventually(t, "every set-up run", func() bool { return done.Load() == jobs })
	if p := peak.Load(); p > maxWorkers || p < 2 {
		t.Errorf("%d set-ups ran at once, want 2 to %d", p, maxWorkers)
	}
	eventually(t, "the burst's workers gone but a few", func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.running <= maxIdleWorkers && w.idle == w.running
	})
	w.run(ctx, func() { done.Add(1) }) // an idle worker takes it
	eventually(t, "the set-up after the burst run", func() bool { return done.Load() == jobs+1 })
	cancel()
	wg.Wait()
	if w.running != 0 || w.idle != 0 || len(w.queue) != 0 {
		t.Errorf("after cancellation: %d running, %d idle, %d queued", w.running, w.idle, len(w.queue))
	}
}
