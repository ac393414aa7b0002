package bore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Server defaults beyond bore's.
const (
	// DefaultAcceptStall is ServerConfig.AcceptStall's default: as long as bore gives a client to say anything.
	DefaultAcceptStall = DefaultHandshakeTimeout
	// DefaultMaxPendingPerClient is the cap `stptunnel bore server` sets (ServerConfig itself has none): above any
	// honest burst (a burst of 3000 visitors peaks well under it), it bounds what a client that does not accept
	// can hold — one file descriptor and about 1 kB of memory per waiting visitor.
	DefaultMaxPendingPerClient = 8192
)

// ServerConfig configures a Server. Zero values take their defaults.
type ServerConfig struct {
	// BindAddr is the IP address the control port listens on. Default 0.0.0.0.
	BindAddr string
	// BindTunnels is the IP address public ports listen on. Default BindAddr.
	BindTunnels string
	// ControlPort is the control port; 0 picks a free one (tests). Set DefaultControlPort for bore clients.
	ControlPort int
	// MinPort and MaxPort bound the public ports. Defaults 1024 and 65535.
	MinPort, MaxPort int
	// Secret makes clients authenticate; an empty Secret means no authentication unless UseSecret is set.
	Secret string
	// UseSecret requires authentication even with an empty Secret, like bore's `--secret ""`.
	UseSecret bool
	// Allow lists the source addresses that may connect to public ports; empty allows every address.
	Allow []netip.Prefix
	// MaxTunnelsPerClient caps the tunnels open at once per client IP address; 0 means no cap.
	MaxTunnelsPerClient int
	// MaxPendingPerClient caps the visitor connections waiting for a client's Accept, per client IP address;
	// 0 means no cap. Visitors over the cap are disconnected at once. It bounds the memory and file descriptors a
	// client that does not accept can hold, so set it far above any honest burst (DefaultMaxPendingPerClient):
	// AcceptStall and PendingExpiry are what bound waiting visitors in time.
	MaxPendingPerClient int
	// AcceptStall is how long visitors may wait on a tunnel without its client accepting any of them before new
	// visitors to that tunnel are refused at once (until the client accepts again, or the waiting ones expire).
	// A client busy with a burst keeps accepting and is never refused; one that stopped accepting (hostile, or its
	// local service is down) gets its new visitors refused instead of queued. Default 3 s; negative: never refuse.
	AcceptStall time.Duration
	// HandshakeTimeout bounds the wait for each initial message. Default 3 s, as bore.
	HandshakeTimeout time.Duration
	// HeartbeatInterval is the idle heartbeat period. Default 500 ms, as bore.
	HeartbeatInterval time.Duration
	// PendingExpiry is how long a visitor waits for the client's Accept. Default 10 s, as bore.
	PendingExpiry time.Duration
	// Logger receives one line per tunnel opened and closed and per connection closed (its opening at debug
	// level); refused and expired visitors are logged once per burst, with counts. nil discards them.
	Logger *slog.Logger
}

// Stats are a server's counters since Start. Byte counts are added when a connection closes.
type Stats struct {
	TunnelsOpen          int64 // public ports open now
	TunnelsTotal         int64 // public ports opened
	ConnectionsPending   int64 // visitors waiting for the client's Accept now
	ConnectionsActive    int64 // visitors being relayed now
	ConnectionsForwarded int64 // visitors accepted by a client and relayed
	ConnectionsRejected  int64 // visitors refused: not in Allow, client not accepting (AcceptStall), or over MaxPendingPerClient
	ConnectionsExpired   int64 // visitors dropped because no Accept came in time
	AuthFailures         int64 // control connections refused for their secret
	BytesFromVisitors    int64 // bytes relayed from visitors to clients
	BytesToVisitors      int64 // bytes relayed from clients to visitors
}

// Server is a bore server.
type Server struct {
	cfg         ServerConfig
	bindTunnels string
	auth        *authenticator
	log         *slog.Logger
	bursts      *burstLog // refused and expired visitors, one line per burst

	ln     *net.TCPListener
	cancel context.CancelFunc
	wg     sync.WaitGroup // accept loop and connection handlers
	done   chan struct{}
	once   sync.Once

	mu      sync.Mutex
	pending map[uuid]*pendingConn
	clients map[netip.Addr]*clientUsage

	stats struct {
		tunnelsOpen, tunnelsTotal, pending, active, forwarded, rejected, expired, authFailures atomic.Int64
		fromVisitors, toVisitors                                                               atomic.Int64
	}
}

type clientUsage struct{ tunnels, pending int }

// pendingConn is a visitor waiting for its client's Accept.
type pendingConn struct {
	id     uuid
	conn   *net.TCPConn
	tunnel *tunnelState
	timer  *time.Timer
}

// tunnelState is one public port and the control connection that asked for it.
type tunnelState struct {
	client netip.Addr
	port   int
	conn   *net.TCPConn
	writeM sync.Mutex

	// Guarded by Server.mu: the visitors waiting for this tunnel's client, and since when the client has made no
	// progress (the later of its last Accept and the moment a visitor started waiting on an empty queue).
	pending    map[uuid]*pendingConn
	progressAt time.Time

	forwarded, fromVisitors, toVisitors atomic.Int64
}

// send writes m on the control connection; the deadline keeps a client that stopped reading from stalling us.
func (t *tunnelState) send(m message) error {
	t.writeM.Lock()
	defer t.writeM.Unlock()
	t.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return writeMessage(t.conn, m)
}

// NewServer validates cfg.
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.BindAddr == "" {
		cfg.BindAddr = "0.0.0.0"
	}
	if cfg.BindTunnels == "" {
		cfg.BindTunnels = cfg.BindAddr
	}
	for _, a := range []string{cfg.BindAddr, cfg.BindTunnels} {
		if _, err := netip.ParseAddr(a); err != nil {
			return nil, fmt.Errorf("bore server: bind address: %w", err)
		}
	}
	if cfg.MinPort == 0 {
		cfg.MinPort = 1024
	}
	if cfg.MaxPort == 0 {
		cfg.MaxPort = 65535
	}
	if cfg.MinPort < 1 || cfg.MaxPort > 65535 || cfg.MinPort > cfg.MaxPort {
		return nil, fmt.Errorf("bore server: port range %d-%d is empty or out of 1-65535", cfg.MinPort, cfg.MaxPort)
	}
	if cfg.ControlPort < 0 || cfg.ControlPort > 65535 {
		return nil, fmt.Errorf("bore server: control port %d out of range", cfg.ControlPort)
	}
	setDefault(&cfg.HandshakeTimeout, DefaultHandshakeTimeout)
	setDefault(&cfg.HeartbeatInterval, HeartbeatInterval)
	setDefault(&cfg.PendingExpiry, PendingExpiry)
	if cfg.AcceptStall == 0 {
		cfg.AcceptStall = DefaultAcceptStall
	}
	log := orDiscard(cfg.Logger)
	s := &Server{
		cfg:         cfg,
		bindTunnels: cfg.BindTunnels,
		log:         log,
		bursts:      newBurstLog(log),
		done:        make(chan struct{}),
		pending:     map[uuid]*pendingConn{},
		clients:     map[netip.Addr]*clientUsage{},
	}
	if cfg.Secret != "" || cfg.UseSecret {
		s.auth = newAuthenticator(cfg.Secret)
	}
	return s, nil
}

// Start binds the control port and serves in the background until ctx is cancelled or Close is called.
func (s *Server) Start(ctx context.Context) error {
	if s.ln != nil {
		return errors.New("bore server: already started")
	}
	addr := net.JoinHostPort(s.cfg.BindAddr, strconv.Itoa(s.cfg.ControlPort))
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("bore server: listening on %s: %w", addr, err)
	}
	s.ln = l.(*net.TCPListener)
	ctx, s.cancel = context.WithCancel(ctx)
	context.AfterFunc(ctx, func() { s.ln.Close() })
	s.log.Info("server listening", "addr", s.ln.Addr().String())
	s.wg.Go(func() { s.acceptControl(ctx) })
	go func() {
		s.wg.Wait()
		s.bursts.flush()
		close(s.done)
	}()
	return nil
}

// Addr returns the control listener's address, nil before Start.
func (s *Server) Addr() *net.TCPAddr {
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr().(*net.TCPAddr)
}

// Stats returns a snapshot of the server's counters.
func (s *Server) Stats() Stats {
	return Stats{
		TunnelsOpen:          s.stats.tunnelsOpen.Load(),
		TunnelsTotal:         s.stats.tunnelsTotal.Load(),
		ConnectionsPending:   s.stats.pending.Load(),
		ConnectionsActive:    s.stats.active.Load(),
		ConnectionsForwarded: s.stats.forwarded.Load(),
		ConnectionsRejected:  s.stats.rejected.Load(),
		ConnectionsExpired:   s.stats.expired.Load(),
		AuthFailures:         s.stats.authFailures.Load(),
		BytesFromVisitors:    s.stats.fromVisitors.Load(),
		BytesToVisitors:      s.stats.toVisitors.Load(),
	}
}

// Close stops the server, closes every tunnel and connection, and returns once all its goroutines ended.
func (s *Server) Close() error {
	if s.cancel == nil {
		return nil
	}
	// The listener first, synchronously: cancellation closes the connections from other goroutines, and a client
	// that saw its connection close must not get through to a server that is going away.
	s.ln.Close()
	s.cancel()
	return s.Wait()
}

// Wait blocks until the server has stopped (Close or cancellation of Start's context).
func (s *Server) Wait() error {
	if s.ln == nil {
		return errors.New("bore server: not started")
	}
	<-s.done
	return nil
}

func (s *Server) acceptControl(ctx context.Context) {
	for {
		conn, err := s.ln.AcceptTCP()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			s.bursts.add(burstKey{msg: "accepting control connections failed", reason: err.Error()})
			if !pause(ctx, 10*time.Millisecond) { // e.g. out of file descriptors
				return
			}
			continue
		}
		if ctx.Err() != nil { // accepted while the server was stopping: never serve it
			conn.Close()
			return
		}
		s.wg.Go(func() { s.handleControl(ctx, conn) })
	}
}

func pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func addrOf(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}

// handleControl runs one control connection: authentication, then either a tunnel (Hello) or a visitor's
// relay (Accept).
func (s *Server) handleControl(ctx context.Context, conn *net.TCPConn) {
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	peer := addrOf(conn.RemoteAddr())
	r := newFrameReader(conn)
	if s.auth != nil {
		if err := s.authenticate(conn, r); err != nil {
			s.stats.authFailures.Add(1)
			s.log.Warn("server handshake failed", "client", peer.String(), "err", err)
			conn.SetWriteDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
			_ = writeMessage(conn, message{kind: kindError, text: err.Error()})
			return
		}
	}
	conn.SetReadDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
	m, err := r.readMessage(clientKinds)
	if err != nil {
		if !errors.Is(err, io.EOF) {
			s.log.Warn("control connection", "client", peer.String(), "err", handshakeError(err))
		}
		return
	}
	conn.SetReadDeadline(time.Time{})
	switch m.kind {
	case kindHello:
		s.serveTunnel(ctx, conn, r, peer, int(m.port))
	case kindAccept:
		s.forward(ctx, conn, r, peer, m.id)
	default:
		s.log.Warn("unexpected message", "client", peer.String(), "message", m.kind)
	}
}

// authenticate challenges the client. Its error text is what the server sends back in an Error frame.
func (s *Server) authenticate(conn *net.TCPConn, r *frameReader) error {
	challenge := newUUID()
	conn.SetWriteDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
	if err := writeMessage(conn, message{kind: kindChallenge, id: challenge}); err != nil {
		return err
	}
	conn.SetReadDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
	m, err := r.readMessage(clientKinds)
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return errors.New("timed out waiting for initial message")
	case err != nil && !errors.Is(err, io.EOF):
		return err
	case err != nil || m.kind != kindAuthenticate:
		return errors.New(errTextSecretRequired)
	case !s.auth.valid(challenge, m.text):
		return errors.New(errTextInvalidSecret)
	}
	return nil
}

// serveTunnel opens a public port for the client and runs it until the control connection ends.
func (s *Server) serveTunnel(ctx context.Context, conn *net.TCPConn, r *frameReader, client netip.Addr, port int) {
	refuse := func(text string) {
		s.log.Warn("tunnel refused", "client", client.String(), "port", port, "err", text)
		t := &tunnelState{conn: conn}
		_ = t.send(message{kind: kindError, text: text})
	}
	if !s.reserveTunnel(client) {
		refuse(errTextTooManyTunnels)
		return
	}
	// The client's slot is free before the tunnel counts as closed, so whoever sees TunnelsOpen drop can reuse it.
	release := sync.OnceFunc(func() { s.releaseTunnel(client) })
	defer release()
	ln, errText := s.listenTunnel(ctx, port)
	if ln == nil {
		refuse(errText)
		return
	}
	t := &tunnelState{client: client, port: ln.Addr().(*net.TCPAddr).Port, conn: conn, pending: map[uuid]*pendingConn{}}
	if ctx.Err() != nil { // stopping: a Hello now would announce a tunnel that is about to close
		ln.Close()
		return
	}
	// Counted open before the client hears Hello, so a client that saw Hello always finds the tunnel counted.
	s.stats.tunnelsOpen.Add(1)
	if err := t.send(message{kind: kindHello, port: uint16(t.port)}); err != nil {
		ln.Close()
		release()
		s.stats.tunnelsOpen.Add(-1)
		return
	}
	s.stats.tunnelsTotal.Add(1)
	s.log.Info("tunnel open", "client", client.String(), "port", t.port)

	tctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(tctx, func() {
		ln.Close()
		conn.Close()
	})
	var wg sync.WaitGroup
	wg.Go(func() {
		defer cancel()
		s.acceptVisitors(tctx, t, ln)
	})
	wg.Go(func() {
		defer cancel()
		// bore clients send nothing after Hello: reading only detects the end of the connection at once.
		_, _ = io.Copy(io.Discard, r.br)
	})
	ticker := time.NewTicker(s.cfg.HeartbeatInterval)
	for loop := true; loop; {
		select {
		case <-tctx.Done():
			loop = false
		case <-ticker.C:
			if err := t.send(message{kind: kindHeartbeat}); err != nil {
				loop = false // assume the client is gone
			}
		}
	}
	ticker.Stop()
	cancel()
	stop()
	ln.Close()
	conn.Close()
	wg.Wait()
	s.dropPending(t)
	release()
	s.stats.tunnelsOpen.Add(-1)
	s.log.Info("tunnel closed", "client", client.String(), "port", t.port, "connections", t.forwarded.Load(),
		"bytes_from_visitors", t.fromVisitors.Load(), "bytes_to_visitors", t.toVisitors.Load())
}

// listenTunnel binds the public port: the requested one, or one of RandomPortAttempts random ports of the
// range for port 0. On failure it returns the Error text bore sends.
func (s *Server) listenTunnel(ctx context.Context, port int) (*net.TCPListener, string) {
	var lc net.ListenConfig
	bind := func(port int) (*net.TCPListener, string) {
		l, err := lc.Listen(ctx, "tcp", net.JoinHostPort(s.bindTunnels, strconv.Itoa(port)))
		switch {
		case err == nil:
			return l.(*net.TCPListener), ""
		case errors.Is(err, syscall.EADDRINUSE):
			return nil, errTextPortInUse
		case errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM):
			return nil, errTextPermission
		}
		return nil, errTextBindFailed
	}
	if port > 0 {
		if port < s.cfg.MinPort || port > s.cfg.MaxPort {
			return nil, errTextPortNotInRange
		}
		return bind(port)
	}
	for range RandomPortAttempts {
		if l, _ := bind(s.cfg.MinPort + rand.IntN(s.cfg.MaxPort-s.cfg.MinPort+1)); l != nil {
			return l, ""
		}
	}
	return nil, errTextNoPortAvailable
}

// acceptVisitors announces each allowed visitor on the public port to the client.
func (s *Server) acceptVisitors(ctx context.Context, t *tunnelState, ln *net.TCPListener) {
	for {
		visitor, err := ln.AcceptTCP()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			s.bursts.add(burstKey{msg: "accepting visitors failed", client: t.client, port: t.port, reason: err.Error()})
			if !pause(ctx, 10*time.Millisecond) {
				return
			}
			continue
		}
		from := addrOf(visitor.RemoteAddr())
		refused := refusedNotAllowed
		var id uuid
		if s.allowed(from) {
			id, refused = s.addPending(t, visitor)
			from = netip.Addr{} // refused for the client's sake, not the visitor's address: one line for all
		}
		if refused != "" {
			s.stats.rejected.Add(1)
			s.bursts.add(burstKey{msg: "visitors refused", client: t.client, port: t.port, visitor: from, reason: refused})
			visitor.Close()
			continue
		}
		if err := t.send(message{kind: kindConnection, id: id}); err != nil {
			return // the deferred cancel ends the tunnel, which drops its pending visitors
		}
	}
}

func (s *Server) allowed(a netip.Addr) bool {
	if len(s.cfg.Allow) == 0 {
		return true
	}
	for _, p := range s.cfg.Allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (s *Server) reserveTunnel(client netip.Addr) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.usage(client)
	if s.cfg.MaxTunnelsPerClient > 0 && u.tunnels >= s.cfg.MaxTunnelsPerClient {
		return false
	}
	u.tunnels++
	return true
}

func (s *Server) releaseTunnel(client netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.usage(client).tunnels--
	s.forget(client)
}

// usage returns the counters of client; s.mu must be held.
func (s *Server) usage(client netip.Addr) *clientUsage {
	u := s.clients[client]
	if u == nil {
		u = &clientUsage{}
		s.clients[client] = u
	}
	return u
}

// forget drops the counters of a client that holds nothing; s.mu must be held.
func (s *Server) forget(client netip.Addr) {
	if u := s.clients[client]; u != nil && u.tunnels == 0 && u.pending == 0 {
		delete(s.clients, client)
	}
}

// Why a visitor was refused, as logged.
const (
	refusedNotAllowed   = "not in the allow list"
	refusedStalled      = "the client has not accepted any waiting visitor lately"
	refusedOverPending  = "too many visitors waiting for this client address"
	expiredNotAccepted  = "not accepted in time"
	visitorsExpiredText = "visitors expired"
)

// addPending queues visitor for t's client and returns its id, or why it is refused.
func (s *Server) addPending(t *tunnelState, visitor *net.TCPConn) (uuid, string) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(t.pending) == 0 {
		t.progressAt = now
	} else if s.cfg.AcceptStall > 0 && now.Sub(t.progressAt) > s.cfg.AcceptStall {
		return uuid{}, refusedStalled
	}
	u := s.usage(t.client)
	if s.cfg.MaxPendingPerClient > 0 && u.pending >= s.cfg.MaxPendingPerClient {
		return uuid{}, refusedOverPending
	}
	u.pending++
	p := &pendingConn{id: newUUID(), conn: visitor, tunnel: t}
	p.timer = time.AfterFunc(s.cfg.PendingExpiry, func() {
		if s.takePending(p.id, false) != nil {
			s.stats.expired.Add(1) // counted before the visitor can see the close
			s.bursts.add(burstKey{msg: visitorsExpiredText, client: t.client, port: t.port, reason: expiredNotAccepted})
			visitor.Close()
		}
	})
	s.pending[p.id] = p
	t.pending[p.id] = p
	s.stats.pending.Add(1)
	return p.id, ""
}

// takePending removes and returns visitor id, or nil if it is not (or no longer) pending. accepted says the
// client accepted it: progress, which clears a stall.
func (s *Server) takePending(id uuid, accepted bool) *pendingConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pending[id]
	if p == nil {
		return nil
	}
	delete(s.pending, id)
	delete(p.tunnel.pending, id)
	if accepted {
		p.tunnel.progressAt = time.Now()
	}
	p.timer.Stop()
	s.clients[p.tunnel.client].pending--
	s.forget(p.tunnel.client)
	s.stats.pending.Add(-1)
	return p
}

// dropPending disconnects the visitors still waiting on tunnel t.
func (s *Server) dropPending(t *tunnelState) {
	s.mu.Lock()
	ps := make([]*pendingConn, 0, len(t.pending))
	for _, p := range t.pending {
		ps = append(ps, p)
	}
	s.mu.Unlock()
	for _, p := range ps {
		if s.takePending(p.id, false) != nil {
			p.conn.Close()
		}
	}
}

// forward relays the visitor id over conn, the connection on which the client accepted it.
func (s *Server) forward(ctx context.Context, conn *net.TCPConn, r *frameReader, client netip.Addr, id uuid) {
	p := s.takePending(id, true)
	if p == nil {
		s.log.Warn("missing connection", "id", id.String(), "client", client.String())
		return
	}
	t := p.tunnel
	s.stats.forwarded.Add(1)
	s.stats.active.Add(1)
	t.forwarded.Add(1)
	visitor := p.conn.RemoteAddr().String()
	s.log.Debug("connection open", "id", id.String(), "port", t.port, "visitor", visitor)
	start := time.Now()
	res := relay(ctx, conn, p.conn, r.buffered(), nil, nil)
	s.stats.active.Add(-1)
	s.stats.toVisitors.Add(res.AToB)
	s.stats.fromVisitors.Add(res.BToA)
	t.toVisitors.Add(res.AToB)
	t.fromVisitors.Add(res.BToA)
	s.log.Info("connection closed", "id", id.String(), "port", t.port, "visitor", visitor,
		"duration", time.Since(start).Round(time.Millisecond),
		"bytes_from_visitor", res.BToA, "bytes_to_visitor", res.AToB, errAttr(res.Err))
}
