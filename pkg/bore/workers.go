package bore

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// workers run the set-up of visitors (dialling the local service, and the next spare connection) on goroutines
// that are reused: a goroutine's stack grows deep in a dial, and a new goroutine per visitor paid for that growth
// (stack copying was ~8 % of a busy client's CPU) and for its start. Up to maxIdleWorkers wait for the next
// visitor, each for workerIdle at most; a burst starts as many as it needs, and they end with it. The relays
// themselves run on goroutines of their own, which stay small.
type workers struct {
	jobs chan func()
	idle atomic.Int32
	wg   *sync.WaitGroup
}

const (
	maxIdleWorkers = 4
	workerIdle     = 2 * time.Second
)

func newWorkers(wg *sync.WaitGroup) *workers {
	return &workers{jobs: make(chan func()), wg: wg}
}

// run runs job on an idle worker, or on a new one.
func (w *workers) run(ctx context.Context, job func()) {
	select {
	case w.jobs <- job:
	default:
		w.wg.Go(func() { w.loop(ctx, job) })
	}
}

func (w *workers) loop(ctx context.Context, job func()) {
	var t *time.Timer
	for {
		job()
		if w.idle.Add(1) > maxIdleWorkers {
			w.idle.Add(-1)
			return
		}
		if t == nil {
			t = time.NewTimer(workerIdle)
			defer t.Stop()
		} else {
			t.Reset(workerIdle)
		}
		select {
		case job = <-w.jobs:
			w.idle.Add(-1)
		case <-t.C:
			w.idle.Add(-1)
			return
		case <-ctx.Done():
			w.idle.Add(-1)
			return
		}
	}
}
