package bore

import (
	"log/slog"
	"net/netip"
	"sync"
	"time"
)

// How refusals and expiries are summarised: a burst ends after burstQuiet without a new event of its kind, and a
// burst that goes on is reported every burstEvery.
const (
	burstQuiet = time.Second
	burstEvery = 10 * time.Second
)

// burstKey is one kind of event that is logged once per burst: the log message, where, and why.
type burstKey struct {
	msg     string
	client  netip.Addr // zero for events not tied to a client
	port    int        // zero for events not tied to a tunnel
	visitor netip.Addr // the visitor's address where it is the reason (not in the allow list), else zero
	reason  string
}

type burst struct {
	count       int
	first, last time.Time
	timer       *time.Timer
}

// burstLog logs events that come in bursts (a flood of refused visitors, an accept loop out of file
// descriptors) as one warning per burst with the count and the span, instead of one line per event.
type burstLog struct {
	log    *slog.Logger
	mu     sync.Mutex
	bursts map[burstKey]*burst
	closed bool
}

func newBurstLog(log *slog.Logger) *burstLog {
	return &burstLog{log: log, bursts: map[burstKey]*burst{}}
}

// add counts one event; the first of a burst schedules its report.
func (l *burstLog) add(k burstKey) {
	now := time.Now()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		l.write(k, &burst{count: 1, first: now, last: now})
		return
	}
	b := l.bursts[k]
	if b == nil {
		b = &burst{first: now}
		l.bursts[k] = b
		b.timer = time.AfterFunc(burstQuiet, func() { l.due(k) })
	}
	b.count++
	b.last = now
	l.mu.Unlock()
}

// due reports k's burst if it is over (or has gone on for burstEvery), else waits for its end.
func (l *burstLog) due(k burstKey) {
	now := time.Now()
	l.mu.Lock()
	b := l.bursts[k]
	if b == nil {
		l.mu.Unlock()
		return
	}
	if quiet := now.Sub(b.last); quiet < burstQuiet && now.Sub(b.first) < burstEvery {
		b.timer.Reset(min(burstQuiet-quiet, burstEvery-now.Sub(b.first)))
		l.mu.Unlock()
		return
	}
	delete(l.bursts, k)
	l.mu.Unlock()
	l.write(k, b)
}

// flush reports every burst still open and logs further events at once; the server calls it when it stops.
func (l *burstLog) flush() {
	l.mu.Lock()
	open := l.bursts
	l.bursts, l.closed = nil, true
	l.mu.Unlock()
	for k, b := range open {
		b.timer.Stop()
		l.write(k, b)
	}
}

func (l *burstLog) write(k burstKey, b *burst) {
	attrs := make([]any, 0, 10)
	if k.client.IsValid() {
		attrs = append(attrs, "client", k.client.String())
	}
	if k.port != 0 {
		attrs = append(attrs, "port", k.port)
	}
	if k.visitor.IsValid() {
		attrs = append(attrs, "visitor", k.visitor.String())
	}
	attrs = append(attrs, "count", b.count, "over", b.last.Sub(b.first).Round(time.Millisecond), "reason", k.reason)
	l.log.Warn(k.msg, attrs...)
}
