package bore

import (
	"context"
	"sync"
	"time"
)

// workers run the set-up of visitors (dialling the local service, and the next spare connection) on goroutines
// that are reused: a goroutine's stack grows deep in a dial, and a new goroutine per visitor paid for that growth
// (stack copying was ~8 % of a busy client's CPU) and for its start. At most maxWorkers set up visitors at once —
// a burst of a thousand visitors is set up by that many goroutines in turn, not a thousand deep stacks at once
// (1000 connections: the client's peak RSS 24–25 → 21–22 MB) nor a thousand simultaneous connects to the local
// service; with a 50 ms round trip to the server the last visitor of such a burst waits about 0.4 s for its
// turn, where a goroutine each would start all thousand at once — and up to maxIdleWorkers wait workerIdle for the
// next visitor. The relays themselves run on goroutines of their own, which stay small.
type workers struct {
	wg *sync.WaitGroup

	mu      sync.Mutex
	queue   []func() // set-ups waiting for a worker
	running int      // workers started and not ended
	idle    int      // workers waiting for a set-up
	wake    chan struct{}
}

const (
	maxWorkers     = 128
	maxIdleWorkers = 4
	workerIdle     = 2 * time.Second
)

func newWorkers(wg *sync.WaitGroup) *workers {
	return &workers{wg: wg, wake: make(chan struct{}, maxWorkers)}
}

// run queues job for a worker, starting one if none is idle and fewer than maxWorkers run. It never blocks: the
// control connection's reader calls it.
func (w *workers) run(ctx context.Context, job func()) {
	w.mu.Lock()
	w.queue = append(w.queue, job)
	start := w.idle == 0 && w.running < maxWorkers
	if start {
		w.running++
	}
	w.mu.Unlock()
	if start {
		w.wg.Go(func() { w.loop(ctx) })
		return
	}
	select {
	case w.wake <- struct{}{}: // an idle worker takes it
	default: // every worker is busy: the first to finish takes it
	}
}

// next returns the next queued set-up, or nil.
func (w *workers) next() func() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.queue) == 0 {
		return nil
	}
	job := w.queue[0]
	w.queue[0] = nil
	w.queue = w.queue[1:]
	if len(w.queue) == 0 {
		w.queue = nil // let a burst's backlog go
	}
	return job
}

func (w *workers) loop(ctx context.Context) {
	var t *time.Timer
	defer func() {
		if t != nil {
			t.Stop()
		}
	}()
	for {
		for job := w.next(); job != nil; job = w.next() {
			job()
		}
		w.mu.Lock()
		if len(w.queue) > 0 { // queued between next and the lock
			w.mu.Unlock()
			continue
		}
		if w.idle >= maxIdleWorkers || ctx.Err() != nil {
			w.running--
			w.mu.Unlock()
			return
		}
		w.idle++
		w.mu.Unlock()
		if t == nil {
			t = time.NewTimer(workerIdle)
		} else {
			t.Reset(workerIdle)
		}
		var wake bool
		select {
		case <-w.wake:
			wake = true
		case <-t.C:
		case <-ctx.Done():
		}
		w.mu.Lock()
		w.idle--
		if !wake && len(w.queue) == 0 {
			w.running--
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
	}
}

// idleCount is how many workers wait for a set-up.
func (w *workers) idleCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.idle
}
