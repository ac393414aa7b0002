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
	var (
		res     relayResult
		errOnce sync.Once
		wg      sync.WaitGroup
	)
	closeBoth := func() {
		a.Close()
		b.Close()
	}
	fail := func(err error) {
		if err == nil {
			return
		}
		errOnce.Do(func() {
			if !errors.Is(err, net.ErrClosed) || ctx.Err() == nil {
				res.Err = err
			}
		})
		closeBoth()
	}
	stop := context.AfterFunc(ctx, closeBoth)
	defer stop()
	// No deadline left from the handshake (a challenge written under one) may cut the relay short.
	a.SetDeadline(noDeadline)
	b.SetDeadline(noDeadline)

	wg.Go(func() {
		n, err := copyConn(a, b, bToA)
		res.BToA = n
		if err != nil {
			fail(err)
			return
		}
		fail(a.CloseWrite())
	})
	func() {
		if len(aBuffered) > 0 {
			n, err := b.Write(aBuffered)
			res.AToB += int64(n)
			count(aToB, n)
			if err != nil {
				fail(err)
				return
			}
		}
		n, err := copyConn(b, a, aToB)
		res.AToB += n
		if err != nil {
			fail(err)
			return
		}
		fail(b.CloseWrite())
	}()
	wg.Wait()
	closeBoth()
	return res
}
