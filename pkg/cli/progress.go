package cli

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// waitTracker shows what a long Lambda step still waits for: an update goes live in seconds, a restore during a
// slow API in tens, and a silent terminal looks stuck. On a terminal it keeps one live status line below the
// messages, with the elapsed time; elsewhere (a CI log) it writes a line every offTerminalEvery naming what is
// still pending. It stops by itself once nothing is pending.
type waitTracker struct {
	ui      *ui
	live    bool          // stderr is a terminal: a status line, redrawn every tick
	every   time.Duration // off a terminal: how often a line is written
	tick    time.Duration // on a terminal: how often the line is redrawn
	mu      sync.Mutex
	title   string // "Updating Lambda env vars", "Restoring Lambda env vars"
	total   int
	pending []string
	started time.Time
	stop    chan struct{}
	stopped chan struct{}
}

const (
	offTerminalEvery = 10 * time.Second
	statusTick       = time.Second
	// envProgressEvery overrides both intervals. Not part of the contract: scripts use it to see the lines soon.
	envProgressEvery = "STPTUNNEL_PROGRESS_EVERY"
)

func newWaitTracker(u *ui, live bool) *waitTracker {
	return &waitTracker{ui: u, live: live, every: offTerminalEvery, tick: statusTick}
}

// start tracks names until each is done. A step already tracked is replaced.
func (w *waitTracker) start(title string, names []string) {
	w.end()
	if len(names) == 0 {
		return
	}
	w.mu.Lock()
	w.title, w.total, w.pending, w.started = title, len(names), slices.Clone(names), time.Now()
	w.stop, w.stopped = make(chan struct{}), make(chan struct{})
	stop, stopped := w.stop, w.stopped
	w.mu.Unlock()
	interval := w.every
	if w.live {
		interval = w.tick
		w.draw()
	}
	go func() {
		defer close(stopped)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				w.draw()
			}
		}
	}()
}

// done marks one name as no longer pending; the last one ends the tracking.
func (w *waitTracker) done(name string) {
	w.mu.Lock()
	i := slices.Index(w.pending, name)
	if i >= 0 {
		w.pending = slices.Delete(w.pending, i, i+1)
	}
	last := i >= 0 && len(w.pending) == 0
	w.mu.Unlock()
	if last {
		w.end()
	} else if i >= 0 && w.live {
		w.draw()
	}
}

// end stops the tracking and clears the status line.
func (w *waitTracker) end() {
	w.mu.Lock()
	stop, stopped := w.stop, w.stopped
	w.stop, w.stopped, w.pending = nil, nil, nil
	w.mu.Unlock()
	if stop == nil {
		return
	}
	close(stop)
	<-stopped
	if w.live {
		w.ui.setStatus(statusWaits)
	}
}

// draw shows what is pending: the status line on a terminal, a message elsewhere.
func (w *waitTracker) draw() {
	w.mu.Lock()
	if len(w.pending) == 0 {
		w.mu.Unlock()
		return
	}
	elapsed := time.Since(w.started).Round(time.Second)
	names := w.pending
	more := ""
	if len(names) > 5 {
		names, more = names[:5], fmt.Sprintf(" and %d more", len(w.pending)-5)
	}
	text := fmt.Sprintf("%s: %d of %d done, waiting for %s%s (%v)", w.title, w.total-len(w.pending), w.total,
		strings.Join(names, ", "), more, elapsed)
	w.mu.Unlock()
	if w.live {
		w.ui.setStatus(statusWaits, "… "+text)
		return
	}
	w.ui.info("Still %s", strings.ToLower(text[:1])+text[1:])
}
