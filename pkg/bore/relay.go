package bore

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// count adds n to c, when there is a c.
func count(c *atomic.Int64, n int) {
	if c != nil && n > 0 {
		c.Add(int64(n))
	}
}

// relayResult is what one relayed connection carried.
type relayResult struct {
	AToB, BToA int64 // bytes copied from a to b and from b to a
	Err        error // the first real error, nil when both directions ended with EOF
}

var noDeadline time.Time

// relaySplice lets the relay switch to splice(2) for bulk on Linux; false copies through pooled buffers only
// (tests and benchmarks compare both). Elsewhere it has no effect.
var relaySplice = true

// relay copies a → b and b → a concurrently until both directions end, then closes both connections.
// aBuffered holds bytes already read from a (by a frame reader) and is written to b before the rest of a.
//
// When one side ends its output (EOF), relay half-closes the other side's write direction and lets the other
// direction keep flowing. When a copy fails, or ctx is cancelled, both connections are closed at once. The
// calling goroutine copies a → b itself: one more goroutine per connection, for b → a.
//
// aToB and bToA, when not nil, count the bytes as they go (one atomic add per chunk): what a connection carries is
// visible while it lasts, not only once it ends.
func relay(ctx context.Context, a, b *net.TCPConn, aBuffered []byte, aToB, bToA *atomic.Int64) relayResult {
	r := &relayState{ctx: ctx, a: a, b: b}
	stop := context.AfterFunc(ctx, r.closeBoth)
	// No deadline left from the handshake (a challenge written under one) may cut the relay short.
	a.SetDeadline(noDeadline)
	b.SetDeadline(noDeadline)
	r.wg.Go(func() { r.res.BToA = r.copy(a, b, nil, bToA) })
	r.res.AToB = r.copy(b, a, aBuffered, aToB)
	r.wg.Wait()
	stop()
	r.closeBoth()
	return r.res
}

// relayState is one relay's shared state. The relay's goroutines hold only a pointer to it in their frames, which
// stay small: with the copy's frames below them they fit the smallest goroutine stack (2 kB).
type relayState struct {
	ctx     context.Context
	a, b    *net.TCPConn
	res     relayResult
	errOnce sync.Once
	wg      sync.WaitGroup
}

func (r *relayState) closeBoth() {
	r.a.Close()
	r.b.Close()
}

// copy writes buffered to dst, copies src to dst until src's EOF and then half-closes dst; on an error it ends
// the relay. It returns how many bytes it wrote.
func (r *relayState) copy(dst, src *net.TCPConn, buffered []byte, counter *atomic.Int64) int64 {
	n, err := r.writeBuffered(dst, buffered, counter)
	if err == nil {
		var m int64
		m, err = copyConn(dst, src, counter)
		n += m
	}
	if err == nil {
		err = dst.CloseWrite()
	}
	if err != nil {
		r.fail(err)
	}
	return n
}

// writeBuffered writes what a frame reader read past the handshake; it is not inlined, so that its frame is not
// held below the copy for the connection's life.
//
//go:noinline
func (r *relayState) writeBuffered(dst *net.TCPConn, buffered []byte, counter *atomic.Int64) (int64, error) {
	if len(buffered) == 0 {
		return 0, nil
	}
	n, err := dst.Write(buffered)
	count(counter, n)
	return int64(n), err
}

// fail records the relay's first real error and closes both connections.
func (r *relayState) fail(err error) {
	r.errOnce.Do(func() {
		if !errors.Is(err, net.ErrClosed) || r.ctx.Err() == nil {
			r.res.Err = err
		}
	})
	r.closeBoth()
}
