package bore

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"testing"
	"time"
)

// relayPair relays between two TCP connections and returns their far ends: the visitor's (whose bytes go to a)
// and the service's (behind b). The relay's result arrives on the channel once both directions ended.
func relayPair(t *testing.T, ctx context.Context, l *net.TCPListener, aBuffered []byte) (visitor, service *net.TCPConn, done <-chan relayResult) {
	t.Helper()
	pair := func() (near, far *net.TCPConn) {
		far = dial(t, l.Addr().String())
		far.SetDeadline(noDeadline)
		near, err := l.AcceptTCP()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { near.Close() })
		return near, far
	}
	a, visitor := pair()
	b, service := pair()
	ch := make(chan relayResult, 1)
	go func() { ch <- relay(ctx, a, b, aBuffered, nil, nil) }()
	return visitor, service, ch
}

// forEachCopy runs f with the adaptive copy (buffers, then splice for bulk) and with pooled buffers only, where
// both exist.
func forEachCopy(t *testing.T, f func(t *testing.T)) {
	modes := map[string]bool{"default": relaySplice}
	if runtime.GOOS == "linux" {
		modes = map[string]bool{"adaptive": true, "buffered": false}
	}
	for name, splice := range modes {
		t.Run(name, func(t *testing.T) {
			old := relaySplice
			relaySplice = splice
			t.Cleanup(func() { relaySplice = old })
			f(t)
		})
	}
}

// Megabytes both ways at once arrive intact and in order, the buffered bytes first; each side's half-close ends
// one direction, and the result counts the bytes.
func TestRelayCarriesBothWays(t *testing.T) {
	forEachCopy(t, func(t *testing.T) {
		visitor, service, done := relayPair(t, t.Context(), listenLocal(t), []byte("buffered:"))
		up := bytes.Repeat([]byte("visitor to service "), 300000)
		down := bytes.Repeat([]byte("service to visitor "), 200000)
		got := make(chan []byte, 2)
		go func() {
			visitor.Write(up)
			visitor.CloseWrite()
		}()
		go func() {
			service.Write(down)
			service.CloseWrite()
		}()
		go func() { b, _ := io.ReadAll(service); got <- b }()
		atVisitor, _ := io.ReadAll(visitor)
		atService := <-got
		if !bytes.Equal(atService, append([]byte("buffered:"), up...)) {
			t.Errorf("service got %d bytes, want the buffered bytes then %d", len(atService), len(up))
		}
		if !bytes.Equal(atVisitor, down) {
			t.Errorf("visitor got %d bytes, want %d", len(atVisitor), len(down))
		}
		res := <-done
		if res.Err != nil || res.AToB != int64(len(up)+9) || res.BToA != int64(len(down)) {
			t.Errorf("result %+v", res)
		}
	})
}

// One side gone resets the other; a cancelled context closes both.
func TestRelayEnds(t *testing.T) {
	forEachCopy(t, func(t *testing.T) {
		l := listenLocal(t)
		visitor, service, done := relayPair(t, t.Context(), l, nil)
		service.SetLinger(0)
		service.Close() // reset
		visitor.SetReadDeadline(time.Now().Add(10 * time.Second))
		var ne net.Error
		if _, err := io.ReadAll(visitor); errors.As(err, &ne) && ne.Timeout() {
			t.Errorf("visitor still connected after the service's reset")
		}
		<-done

		ctx, cancel := context.WithCancel(t.Context())
		visitor, _, done = relayPair(t, ctx, l, nil)
		cancel()
		visitor.SetReadDeadline(time.Now().Add(10 * time.Second))
		if n, err := visitor.Read(make([]byte, 1)); n != 0 || err == nil {
			t.Errorf("visitor after cancellation: %d, %v", n, err)
		}
		if res := <-done; res.Err != nil {
			t.Errorf("cancellation is no error: %v", res.Err)
		}
	})
}

// Idle relays hold no pipe and no buffer: four descriptors per relay here (both relayed connections and their
// far ends), where io.Copy's splice holds a pipe per direction, eight.
func TestRelayIdleHoldsNoPipe(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("counts /proc/self/fd")
	}
	fds := func() int {
		runtime.GC() // twice: pooled pipes are dropped by the second collection, and closed by their finalizers
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		return len(ents)
	}
	forEachCopy(t, func(t *testing.T) {
		const n = 50
		l := listenLocal(t)
		before := fds()
		for range n {
			visitor, service, _ := relayPair(t, t.Context(), l, nil)
			visitor.Write([]byte("x")) // one byte each way, so both directions have moved data
			service.Write([]byte("y"))
			io.ReadFull(service, make([]byte, 1))
			io.ReadFull(visitor, make([]byte, 1))
		}
		if grown := fds() - before; grown > 4*n+8 {
			t.Errorf("%d idle relays hold %d descriptors, want about %d", n, grown, 4*n)
		}
	})
}
