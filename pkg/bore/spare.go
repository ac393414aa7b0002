package bore

import (
	"net"
	"sync"
	"time"
)

// A client keeps one connection to the server dialled (and authenticated) ahead while visitors keep coming, so
// the next visitor's Accept goes out at once instead of after a connect (and the challenge, with a secret): one
// to two round trips to the server less for every visitor of a burst or a busy tunnel. A server drops a
// connection that says nothing for 3 s (bore's and ours), so a spare is used within spareMaxAge or closed; it is
// kept only when visitors come closer together than spareBusy, so an idle or quiet tunnel opens no connection
// it does not use.
const (
	spareMaxAge = time.Second
	spareBusy   = time.Second
)

type spare struct {
	mu       sync.Mutex
	conn     *net.TCPConn
	r        *frameReader
	addr     string // what conn was dialled to
	born     time.Time
	expire   *time.Timer
	dialing  bool
	lastSeen time.Time // the last visitor's arrival
	closed   bool
}

// take notes a visitor's arrival and returns the spare connection to addr if a live one is ready (else a nil
// conn), and whether visitors are coming close together (the caller then has the next spare dialled).
func (s *spare) take(addr string, now time.Time) (conn *net.TCPConn, r *frameReader, busy bool) {
	s.mu.Lock()
	busy = !s.lastSeen.IsZero() && now.Sub(s.lastSeen) < spareBusy && spareSupported
	s.lastSeen = now
	conn, r = s.conn, s.r
	fresh := conn != nil && s.addr == addr && now.Sub(s.born) < spareMaxAge
	if conn != nil {
		s.conn, s.r = nil, nil
		s.expire.Stop()
	}
	s.mu.Unlock()
	if conn != nil && (!fresh || !idleAndOpen(conn)) {
		conn.Close()
		return nil, nil, busy
	}
	return conn, r, busy
}

// startDial reports whether the caller should dial the next spare (none is ready nor being dialled).
func (s *spare) startDial() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.conn != nil || s.dialing {
		return false
	}
	s.dialing = true
	return true
}

// dialed stores a spare the caller dialled (nil when the dial failed), closed after spareMaxAge if unused.
func (s *spare) dialed(conn *net.TCPConn, r *frameReader, addr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dialing = false
	if conn == nil {
		return
	}
	if s.closed || s.conn != nil {
		conn.Close()
		return
	}
	s.conn, s.r, s.addr, s.born = conn, r, addr, time.Now()
	s.expire = time.AfterFunc(spareMaxAge, func() {
		s.mu.Lock()
		unused := s.conn == conn
		if unused {
			s.conn, s.r = nil, nil
		}
		s.mu.Unlock()
		if unused { // (taken meanwhile: a visitor's now)
			conn.Close() // closed by us before the server's timeout: the server sees a clean end, and logs nothing
		}
	})
}

// close closes the spare; none is kept afterwards.
func (s *spare) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.conn != nil {
		s.expire.Stop()
		s.conn.Close()
		s.conn, s.r = nil, nil
	}
}
