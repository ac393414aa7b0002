package bore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ClientConfig configures a Client. Zero durations take their defaults.
type ClientConfig struct {
	// Server is the bore server, host[:port]; the port defaults to DefaultControlPort.
	Server string
	// LocalHost and LocalPort are the local service to expose. LocalHost defaults to "localhost".
	LocalHost string
	LocalPort int
	// Port is the public port to ask for; 0 lets the server choose.
	Port int
	// Secret authenticates the client; an empty Secret means no authentication unless UseSecret is set.
	Secret string
	// UseSecret authenticates even with an empty Secret, like bore's `--secret ""`.
	UseSecret bool

	// HeartbeatTimeout is how long the client waits for any frame from the server before it declares the link
	// dead (the server sends a heartbeat every 500 ms). Default 5 s.
	HeartbeatTimeout time.Duration
	// HandshakeTimeout bounds each connection attempt and each handshake message. Default 3 s, as bore.
	HandshakeTimeout time.Duration
	// Logger receives the client's logs; nil discards them.
	Logger *slog.Logger
}

// Client exposes one local TCP port through a bore server over one control connection: it runs from Start
// until the link is lost (the server went away, or sent nothing for HeartbeatTimeout), Close is called or the
// context given to Start ends, and Wait then says why. It does not reconnect: whoever runs it decides whether to
// start another (pkg/tunnel does, with backoff and failover between servers).
type Client struct {
	cfg         ClientConfig
	serverHost  string
	controlAddr string
	localAddr   string
	auth        *authenticator
	log         *slog.Logger

	mu         sync.Mutex
	started    bool
	remotePort uint16
	publicAddr string
	cancel     context.CancelFunc

	// The per-visitor path. acceptAddr is the IP address and port of the control connection's server: Accept
	// connections go there, with no name lookup per visitor, and to the same server behind round-robin DNS.
	// localDialed is the address of the local service that last answered (a name such as localhost resolves to
	// several addresses; this spares the refused ones). spare is a connection to the server dialled ahead while
	// visitors keep coming.
	acceptAddr  atomic.Pointer[string]
	localDialed atomic.Pointer[string]
	spare       spare
	workers     *workers // run the set-ups

	activity activity // what the tunnel carried, for Activity

	conns sync.WaitGroup // connection handlers
	done  chan struct{}  // closed when everything the client started has ended
	err   error          // final error, set before done is closed
}

// NewClient validates cfg and returns a client that does nothing until Start.
func NewClient(cfg ClientConfig) (*Client, error) {
	if cfg.Server == "" {
		return nil, errors.New("bore client: no server address")
	}
	if cfg.LocalPort < 1 || cfg.LocalPort > 65535 {
		return nil, fmt.Errorf("bore client: local port %d out of range 1-65535", cfg.LocalPort)
	}
	if cfg.Port < 0 || cfg.Port > 65535 {
		return nil, fmt.Errorf("bore client: port %d out of range 0-65535", cfg.Port)
	}
	if cfg.LocalHost == "" {
		cfg.LocalHost = "localhost"
	}
	setDefault(&cfg.HeartbeatTimeout, 5*time.Second)
	setDefault(&cfg.HandshakeTimeout, DefaultHandshakeTimeout)
	host, port, err := SplitServer(cfg.Server)
	if err != nil {
		return nil, fmt.Errorf("bore client: %w", err)
	}
	c := &Client{
		cfg:         cfg,
		serverHost:  host,
		controlAddr: net.JoinHostPort(host, strconv.Itoa(port)),
		localAddr:   net.JoinHostPort(cfg.LocalHost, strconv.Itoa(cfg.LocalPort)),
		log:         orDiscard(cfg.Logger),
		done:        make(chan struct{}),
	}
	c.workers = newWorkers(&c.conns)
	if cfg.Secret != "" || cfg.UseSecret {
		c.auth = newAuthenticator(cfg.Secret)
	}
	return c, nil
}

// SplitServer parses a bore server address, host[:port]: the port defaults to DefaultControlPort, and a bare
// IPv6 address (with or without brackets) is a host.
func SplitServer(s string) (string, int, error) {
	host, portText, err := net.SplitHostPort(s)
	if err != nil {
		return strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"), DefaultControlPort, nil
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("invalid server port in %q", s)
	}
	return host, port, nil
}

func setDefault(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

func orDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

// Start connects to the server and returns once it assigned a public port, or with the first error (the
// server is unreachable, authentication failed, the server sent an Error). The client then runs until ctx is
// cancelled, Close is called, or the link is lost.
func (c *Client) Start(ctx context.Context) error {
	c.mu.Lock()
	if c.started {
		c.mu.Unlock()
		return errors.New("bore client: already started")
	}
	c.started = true
	ctx, c.cancel = context.WithCancel(ctx)
	c.mu.Unlock()

	conn, r, port, err := c.connect(ctx, uint16(c.cfg.Port))
	if err != nil {
		c.cancel()
		c.finish(err)
		return err
	}
	addr := c.setPort(port)
	c.log.Info("listening at "+addr, "public", addr, "local", c.localAddr)
	go func() {
		err := c.run(ctx, conn, r)
		c.cancel()
		c.conns.Wait()
		c.spare.close()
		c.finish(err)
	}()
	return nil
}

func (c *Client) finish(err error) {
	c.err = err
	close(c.done)
}

// PublicAddr returns the current public address, "server-host:remote-port", or "" before Start succeeded.
func (c *Client) PublicAddr() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.publicAddr
}

// RemotePort returns the current public port, 0 before Start succeeded.
func (c *Client) RemotePort() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return int(c.remotePort)
}

func (c *Client) setPort(port uint16) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.remotePort = port
	c.publicAddr = net.JoinHostPort(c.serverHost, strconv.Itoa(int(port)))
	return c.publicAddr
}

// Wait blocks until the client has ended and returns why: nil after Close or cancellation, the Start error,
// or ErrLinkLost (wrapping the cause) when the link was lost.
func (c *Client) Wait() error {
	c.mu.Lock()
	started := c.started
	c.mu.Unlock()
	if !started {
		return errors.New("bore client: not started")
	}
	<-c.done
	return c.err
}

// Close stops the client and every connection it relays, and returns once all its goroutines have ended.
func (c *Client) Close() error {
	c.mu.Lock()
	started, cancel := c.started, c.cancel
	c.started = true // a Close before Start makes Start fail
	c.mu.Unlock()
	if !started {
		c.finish(nil)
		return nil
	}
	if cancel != nil {
		cancel()
	}
	<-c.done
	return nil
}

// run serves the control connection until ctx ends (nil) or the link is lost (ErrLinkLost).
func (c *Client) run(ctx context.Context, conn *net.TCPConn, r *frameReader) error {
	err := c.serveControl(ctx, conn, r)
	if ctx.Err() != nil {
		return nil
	}
	err = fmt.Errorf("%w: %w", ErrLinkLost, err)
	c.log.Warn("tunnel down", "public", c.PublicAddr(), "err", err)
	return err
}

// connect dials the control port, authenticates, and asks for port.
func (c *Client) connect(ctx context.Context, port uint16) (*net.TCPConn, *frameReader, uint16, error) {
	conn, r, err := c.dialServer(ctx, c.controlAddr)
	if err != nil {
		return nil, nil, 0, err
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	remote, err := c.hello(conn, r, port)
	if !stop() {
		err = ctx.Err()
	}
	if err != nil {
		conn.Close()
		return nil, nil, 0, err
	}
	addr := conn.RemoteAddr().String()
	c.acceptAddr.Store(&addr)
	return conn, r, remote, nil
}

func (c *Client) hello(conn *net.TCPConn, r *frameReader, port uint16) (uint16, error) {
	if err := writeMessage(conn, message{kind: kindHello, port: port}); err != nil {
		return 0, fmt.Errorf("sending hello: %w", err)
	}
	conn.SetReadDeadline(time.Now().Add(c.cfg.HandshakeTimeout))
	m, err := r.readMessage(serverKinds)
	if err != nil {
		return 0, fmt.Errorf("waiting for the server's hello: %w", handshakeError(err))
	}
	conn.SetReadDeadline(time.Time{})
	switch m.kind {
	case kindHello:
		return m.port, nil
	case kindError:
		return 0, &ServerError{Message: m.text}
	case kindChallenge:
		return 0, ErrSecretRequired
	}
	return 0, fmt.Errorf("%w: unexpected initial non-hello message %s", ErrProtocol, m)
}

// dialServer opens a connection to the control port at addr and answers the server's challenge if we have a
// secret.
func (c *Client) dialServer(ctx context.Context, addr string) (*net.TCPConn, *frameReader, error) {
	d := net.Dialer{Timeout: c.cfg.HandshakeTimeout}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, &DialError{Addr: addr, Err: err}
	}
	conn := nc.(*net.TCPConn)
	r := newFrameReader(conn)
	if c.auth == nil {
		return conn, r, nil
	}
	conn.SetReadDeadline(time.Now().Add(c.cfg.HandshakeTimeout))
	m, err := r.readMessage(serverKinds)
	conn.SetReadDeadline(time.Time{})
	switch {
	case err != nil:
		err = fmt.Errorf("%w (waiting for the challenge: %w)", ErrSecretNotRequired, handshakeError(err))
	case m.kind == kindError:
		err = &ServerError{Message: m.text}
	case m.kind != kindChallenge:
		err = fmt.Errorf("%w (got %s)", ErrSecretNotRequired, m)
	default:
		err = writeMessage(conn, message{kind: kindAuthenticate, text: c.auth.answer(m.id)})
	}
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn, r, nil
}

func handshakeError(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("%w (timed out waiting for initial message)", ErrNoAnswer)
	}
	return err
}

// serveControl reads the control connection until it fails, starting a relay for each Connection.
func (c *Client) serveControl(ctx context.Context, conn *net.TCPConn, r *frameReader) error {
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	for {
		conn.SetReadDeadline(time.Now().Add(c.cfg.HeartbeatTimeout))
		m, err := r.readMessage(serverKinds)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return fmt.Errorf("no frame from the server for %v", c.cfg.HeartbeatTimeout)
			}
			return err
		}
		switch m.kind {
		case kindHeartbeat:
		case kindConnection:
			c.connection(ctx, m.id)
		case kindError:
			c.log.Error("server error", "message", m.text)
		default:
			c.log.Warn("unexpected message", "message", m.String())
		}
	}
}

// connection starts serving visitor id. With a spare connection to the server, its Accept goes out here and
// now, before any goroutine is started for it; dialling the local service runs on a worker, the relay on
// goroutines of its own, and, while visitors keep coming, the worker then dials the next spare.
func (c *Client) connection(ctx context.Context, id uuid) {
	remote, r, busy := c.takeSpare()
	if remote != nil {
		if err := sendAccept(remote, id); err != nil {
			c.log.Debug("spare connection failed, dialling", "id", id.String(), "err", err)
			remote, r = nil, nil
		}
	}
	c.workers.run(ctx, func() {
		c.handleConnection(ctx, id, remote, r)
		if busy {
			c.refillSpare(ctx)
		}
	})
}

// sendAccept sends Accept(id) on remote, and closes it on failure.
func sendAccept(remote *net.TCPConn, id uuid) error {
	if err := writeMessage(remote, message{kind: kindAccept, id: id}); err != nil {
		remote.Close()
		return fmt.Errorf("sending accept: %w", err)
	}
	return nil
}

// handleConnection dials the local service and, unless remote already carries visitor id's Accept, a server
// connection to accept it on (both at once: the visitor waits for the later of the two), then relays.
func (c *Client) handleConnection(ctx context.Context, id uuid, remote *net.TCPConn, r *frameReader) {
	var local *net.TCPConn
	var err error
	if remote != nil {
		if local, err = c.dialLocal(ctx); err != nil {
			remote.Close()
		}
	} else {
		remote, r, local, err = c.acceptAndDialLocal(ctx, id)
	}
	if err != nil {
		var de *DialError
		if errors.As(err, &de) && de.Addr == c.localAddr {
			c.activity.localFailed(err)
		}
		c.log.Warn("connection failed", "id", id.String(), "err", err)
		return
	}
	c.log.Debug("connection open", "id", id.String(), "local", c.localAddr)
	c.activity.opened()
	// The relay runs on goroutines of its own: this one's stack has grown deep in the dials, and would be held as
	// long as the connection lasts (and this one goes back to the workers). The frame reader is not kept for the
	// connection's life, only the bytes it read past the Accept's answer (none from a bore server).
	buffered := r.buffered()
	// This frame, and relay's, are small: with the copy's frames below them they fit the smallest stack (2 kB), so
	// no stack is grown (copied) while a connection is set up, and a relayed connection holds less memory.
	c.conns.Go(func() {
		res := relay(ctx, remote, local, buffered, &c.activity.bytesIn, &c.activity.bytesOut)
		c.activity.closed()
		c.logClosed(id, res)
	})
}

// logClosed is not inlined: the log call's frame would otherwise sit below the relay for the connection's life.
//
//go:noinline
func (c *Client) logClosed(id uuid, res relayResult) {
	c.log.Info("connection closed", "id", id.String(), "bytes_in", res.AToB, "bytes_out", res.BToA, errAttr(res.Err))
}

// Activity returns what the tunnel has carried since the client started: safe to call at any time, from any
// goroutine, and cheap (atomic loads).
func (c *Client) Activity() Activity { return c.activity.snapshot() }

// acceptAndDialLocal dials a server connection and sends Accept(id) on it while it dials the local service; on
// error it closes whatever it opened.
func (c *Client) acceptAndDialLocal(ctx context.Context, id uuid) (*net.TCPConn, *frameReader, *net.TCPConn, error) {
	type dialed struct {
		conn *net.TCPConn
		err  error
	}
	localc := make(chan dialed, 1)
	go func() {
		conn, err := c.dialLocal(ctx)
		localc <- dialed{conn, err}
	}()
	remote, r, err := c.dialServer(ctx, c.acceptTarget())
	if err == nil {
		err = sendAccept(remote, id)
	}
	l := <-localc
	if err != nil || l.err != nil {
		if err == nil {
			remote.Close()
		}
		if l.conn != nil {
			l.conn.Close()
		}
		return nil, nil, nil, errors.Join(err, l.err)
	}
	return remote, r, l.conn, nil
}

// acceptTarget is where Accept connections go: the control connection's server address.
func (c *Client) acceptTarget() string {
	if a := c.acceptAddr.Load(); a != nil {
		return *a
	}
	return c.controlAddr
}

// takeSpare returns the spare connection to the server if a live one is ready (else nil), and whether visitors
// are coming close together (the next spare is then worth dialling).
func (c *Client) takeSpare() (*net.TCPConn, *frameReader, bool) {
	return c.spare.take(c.acceptTarget(), time.Now())
}

// refillSpare dials the next spare connection, unless one is ready or being dialled. It runs on the worker that
// set up a visitor, once that visitor is relayed.
func (c *Client) refillSpare(ctx context.Context) {
	if !c.spare.startDial() {
		return
	}
	addr := c.acceptTarget()
	conn, r, err := c.dialServer(ctx, addr)
	if err != nil {
		c.spare.dialed(nil, nil, "")
		return
	}
	c.spare.dialed(conn, r, addr)
}

// dialLocal connects to the local service, at the address that answered last if it still does.
func (c *Client) dialLocal(ctx context.Context) (*net.TCPConn, error) {
	d := net.Dialer{Timeout: c.cfg.HandshakeTimeout, KeepAlive: -1} // a local service needs no keep-alive probes
	if a := c.localDialed.Load(); a != nil {
		nc, err := d.DialContext(ctx, "tcp", *a)
		if err == nil {
			return nc.(*net.TCPConn), nil
		}
		c.localDialed.CompareAndSwap(a, nil)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() || ctx.Err() != nil { // the time is spent: no second try by name
			return nil, &DialError{Addr: c.localAddr, Err: err}
		}
	}
	nc, err := d.DialContext(ctx, "tcp", c.localAddr)
	if err != nil {
		return nil, &DialError{Addr: c.localAddr, Err: err}
	}
	a := nc.RemoteAddr().String()
	c.localDialed.Store(&a)
	return nc.(*net.TCPConn), nil
}
