package bore

import (
	"log/slog"
	"sync/atomic"
	"time"
)

// Activity is what a client's tunnel has carried: what a user watching a session wants to know (did my function
// ever connect? is my database up?).
type Activity struct {
	// Open is the number of connections relayed now; Total since the client started.
	Open, Total int64
	// BytesIn went from visitors to the local service, BytesOut from the local service back to them, counted as
	// they go (a long-lived connection shows its traffic while it lasts).
	BytesIn, BytesOut int64
	// Last is when the latest connection was opened (zero before the first).
	Last time.Time
	// LocalErrors counts visitors whose connection to the local service failed (the database is down, say);
	// LastLocalError is the latest such failure.
	LocalErrors    int64
	LastLocalError string
}

// Add returns the sum of a and b (Last and LastLocalError: b's when it has them): a tunnel's activity across the
// clients it had.
func (a Activity) Add(b Activity) Activity {
	a.Open += b.Open
	a.Total += b.Total
	a.BytesIn += b.BytesIn
	a.BytesOut += b.BytesOut
	a.LocalErrors += b.LocalErrors
	if b.Last.After(a.Last) {
		a.Last = b.Last
	}
	if b.LastLocalError != "" {
		a.LastLocalError = b.LastLocalError
	}
	return a
}

// activity holds a client's counters: atomics only, so the relay counts without a lock.
type activity struct {
	open, total       atomic.Int64
	bytesIn, bytesOut atomic.Int64
	last              atomic.Int64 // unix nanoseconds
	localErrors       atomic.Int64
	lastLocalError    atomic.Pointer[string]
}

func (a *activity) opened() {
	a.open.Add(1)
	a.total.Add(1)
	a.last.Store(time.Now().UnixNano())
}

func (a *activity) closed() { a.open.Add(-1) }

func (a *activity) localFailed(err error) {
	a.localErrors.Add(1)
	msg := err.Error()
	a.lastLocalError.Store(&msg)
}

func (a *activity) snapshot() Activity {
	s := Activity{Open: a.open.Load(), Total: a.total.Load(), BytesIn: a.bytesIn.Load(), BytesOut: a.bytesOut.Load(),
		LocalErrors: a.localErrors.Load()}
	if ns := a.last.Load(); ns != 0 {
		s.Last = time.Unix(0, ns)
	}
	if e := a.lastLocalError.Load(); e != nil {
		s.LastLocalError = *e
	}
	return s
}

// errAttr is err as a log attribute, or nothing when err is nil (never "err=<nil>").
func errAttr(err error) slog.Attr {
	if err == nil {
		return slog.Attr{}
	}
	return slog.Any("err", err)
}
