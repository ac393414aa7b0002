package tunnel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/sethvargo/go-retry"
	"golang.org/x/sync/errgroup"

	"github.com/stptunnel/stptunnel/pkg/bore"
	"github.com/stptunnel/stptunnel/pkg/connstr"
	"github.com/stptunnel/stptunnel/pkg/doc"
)

// Engines, as written in --engine and in the document's tunnels[].engine.
const (
	EngineNative = "native" // the Go client of pkg/bore
	EngineBore   = "bore"   // an external bore binary
)

// Defaults of CONTRACT.md §3.
const (
	DefaultServer          = "bore.pub"
	DefaultRetries         = 2
	DefaultRetryDelay      = 2 * time.Second
	DefaultReconnectWindow = 30 * time.Second
)

// Spec is one tunnel to open.
type Spec struct {
	Resource doc.Resource `json:"resource"`
	// Servers are the bore servers the tunnel may use, in order of preference (see ParseServers); none means
	// DefaultServer without a secret.
	Servers []Server `json:"servers,omitempty"`
	// Port is the public port to ask each server for; 0 lets the server choose. Once the tunnel is up, a
	// reconnection asks for the port it had, and for any port when that one is taken.
	Port int `json:"port,omitempty"`
	// Engine is EngineNative (the default when empty) or EngineBore.
	Engine string `json:"engine,omitempty"`
	// BorePath is the bore executable, required for EngineBore (see FindBore).
	BorePath string `json:"borePath,omitempty"`
}

// Options tune Open. The zero value gives the defaults.
type Options struct {
	// Retries is how many times a failed start is retried on each server; 0 means DefaultRetries, a negative
	// value none.
	Retries int
	// RetryDelay is the pause between start attempts; 0 means DefaultRetryDelay.
	RetryDelay time.Duration
	// NoLocalCheck opens the tunnels without first checking that each local service accepts connections (as
	// bore does: the service may come up later).
	NoLocalCheck bool
	// LocalTimeout bounds the check that the local service accepts connections. Default 2 s.
	LocalTimeout time.Duration
	// StartTimeout bounds one start attempt of an external bore process. Default 15 s.
	StartTimeout time.Duration
	// ReconnectDelay and ReconnectMaxDelay shape the backoff of a tunnel that lost its server. Defaults 250 ms
	// and 10 s.
	ReconnectDelay, ReconnectMaxDelay time.Duration
	// ReconnectWindow is how long a tunnel that lost its server keeps trying that server before it moves to
	// the next one; 0 means DefaultReconnectWindow, a negative value forever (the tunnel never moves and is
	// never lost).
	ReconnectWindow time.Duration
	// Report, when set, receives the events of Open while it runs (Retrying, Switching); it may be called from
	// several goroutines at once. Once Open has returned, events come through Session.Events.
	Report func(Event)
	// Logger receives the engines' logs; nil discards them.
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	switch {
	case o.Retries == 0:
		o.Retries = DefaultRetries
	case o.Retries < 0:
		o.Retries = 0
	}
	setDefault(&o.RetryDelay, DefaultRetryDelay)
	setDefault(&o.LocalTimeout, 2*time.Second)
	setDefault(&o.StartTimeout, 15*time.Second)
	setDefault(&o.ReconnectDelay, 250*time.Millisecond)
	setDefault(&o.ReconnectMaxDelay, 10*time.Second)
	if o.ReconnectWindow == 0 {
		o.ReconnectWindow = DefaultReconnectWindow
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

func setDefault(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

// EventKind says what happened to a tunnel.
type EventKind int

const (
	// Retrying: a start attempt on Server failed (Err); the next one comes after Delay. Reported by Open.
	Retrying EventKind = iota + 1
	// Switching: the tunnel leaves Server for Next: Server refused the secret (final for that server), stayed
	// unreachable past the start retries (Open) or the reconnect window (a running tunnel). Err says why.
	Switching
	// Down: the tunnel lost its link to Server (Err says why; Public is the address it had); it is reconnecting.
	Down
	// Up: the tunnel is up again on the same server at the same public address.
	Up
	// Moved: the tunnel is up again at a different public address (Public; Previous is the old one): on the
	// same server, which could not give the port back, or on another (Server; PreviousServer was the old one).
	Moved
	// Lost: every server was tried and none took the tunnel back (Err says why for each): it is closed for good.
	Lost
)

func (k EventKind) String() string {
	switch k {
	case Retrying:
		return "retrying"
	case Switching:
		return "switching"
	case Down:
		return "down"
	case Up:
		return "up"
	case Moved:
		return "moved"
	case Lost:
		return "lost"
	}
	return "EventKind(" + strconv.Itoa(int(k)) + ")"
}

// Event is a change of a tunnel's state.
type Event struct {
	Resource string
	Kind     EventKind
	// Server is the bore server the event is about: the one retried (Retrying), left (Switching), lost (Down),
	// or the tunnel is on now (Up, Moved).
	Server string
	// Next is the server a Switching tunnel tries next.
	Next string
	// Public is the tunnel's public address now (the last known one for Down).
	Public string
	// Previous and PreviousServer are, for Moved, the public address and the server before.
	Previous, PreviousServer string
	// Err is the cause, for Retrying, Switching, Down and Lost.
	Err error
	// Delay is the pause before the next attempt, for Retrying.
	Delay time.Duration
}

// link is one running tunnel of an engine, from Start until its link to the server is lost: *bore.Client is one,
// an external bore process another. It never reconnects by itself; Wait says why it ended.
type link interface {
	Start(ctx context.Context) error
	PublicAddr() string
	Wait() error
	Close() error
}

// tunnel is one resource's tunnel and its current link.
type tunnel struct {
	spec  Spec
	local connstr.HostPort // where the resource listens, as the engine dials it

	mu     sync.Mutex
	link   link
	server int // index in spec.Servers of the server the link goes through
	public string
	past   bore.Activity // what the links that ended carried
}

// counting is a link that counts what it carries: the native engine's.
type counting interface{ Activity() bore.Activity }

func (t *tunnel) current() (link, Server, string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.link, t.spec.Servers[t.server], t.public
}

// set makes l, on server i, t's link, and returns the server and public address t had before.
func (t *tunnel) set(l link, i int) (previousServer Server, previous string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	previousServer, previous = t.spec.Servers[t.server], t.public
	if c, ok := t.link.(counting); ok {
		done := c.Activity()
		done.Open = 0 // its connections ended with it
		t.past = t.past.Add(done)
	}
	t.link, t.server, t.public = l, i, t.spec.Servers[i].public(l.PublicAddr())
	return previousServer, previous
}

// activity is what t carried since it opened, across its links; nil when its engine does not count.
func (t *tunnel) activity() *doc.Activity {
	t.mu.Lock()
	l, a := t.link, t.past
	t.mu.Unlock()
	c, ok := l.(counting)
	if !ok {
		return nil
	}
	a = a.Add(c.Activity())
	out := &doc.Activity{Open: a.Open, Total: a.Total, BytesIn: a.BytesIn, BytesOut: a.BytesOut,
		LocalErrors: a.LocalErrors, LastLocalError: a.LastLocalError}
	if !a.Last.IsZero() {
		out.Last = a.Last.UTC().Format(time.RFC3339)
	}
	return out
}

func (t *tunnel) doc() doc.Tunnel {
	_, server, public := t.current()
	return doc.Tunnel{Resource: t.spec.Resource.Name, Local: t.spec.Resource.Address, Public: public,
		Server: server.Addr, Engine: t.spec.Engine}
}

// newLink builds an engine link to server asking for public port (0: any).
func (t *tunnel) newLink(server Server, port int, opts Options) (link, error) {
	log := opts.Logger.With("resource", t.spec.Resource.Name, "server", server.Addr)
	switch t.spec.Engine {
	case EngineNative:
		return bore.NewClient(bore.ClientConfig{Server: server.Addr, LocalHost: t.local.Host, LocalPort: t.local.Port,
			Port: port, Secret: server.Secret, Logger: log})
	case EngineBore:
		return newBoreProcess(t.spec, server, t.local, port, opts.StartTimeout, log)
	}
	return nil, fmt.Errorf("unknown engine %q (want %s or %s)", t.spec.Engine, EngineNative, EngineBore)
}

// startLink starts a link to server i of t, asking for public port (0: any).
func (t *tunnel) startLink(ctx context.Context, i, port int, opts Options) (link, error) {
	l, err := t.newLink(t.spec.Servers[i], port, opts)
	if err != nil {
		return nil, err
	}
	if err := l.Start(ctx); err != nil {
		return nil, err
	}
	return l, nil
}

// Session holds open tunnels and keeps them up until Close: it is the one place that reconnects them.
type Session struct {
	tunnels []*tunnel
	events  chan Event
	opts    Options
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	once    sync.Once
}

const eventBuffer = 64

// Open checks that every resource's local service accepts connections (unless Options.NoLocalCheck), opens all
// the tunnels concurrently and returns once all are up. Each tunnel tries its servers in order: a server is
// retried Options.Retries times unless it refuses the secret, then the tunnel moves on to the next (a Switching
// event). The tunnels then live until Close or until ctx is cancelled; call Close in both cases. On error
// nothing is left running: a *LocalError when a local service is not there (all of them joined), a *StartError
// per server tried (joined) when a tunnel could not be opened on any.
func Open(ctx context.Context, specs []Spec, opts Options) (*Session, error) {
	opts = opts.withDefaults()
	tunnels, err := prepare(specs)
	if err != nil {
		return nil, err
	}
	if !opts.NoLocalCheck {
		if err := checkLocals(ctx, tunnels, opts.LocalTimeout); err != nil {
			return nil, err
		}
	}
	// The links live on ctx, which outlives Open; the first failure cancels it, which stops the other starts.
	ctx, cancel := context.WithCancel(ctx)
	var g errgroup.Group
	for _, t := range tunnels {
		g.Go(func() error {
			err := start(ctx, t, opts)
			if err != nil {
				cancel()
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		cancel()
		for _, t := range tunnels {
			if l, _, _ := t.current(); l != nil {
				l.Close()
			}
		}
		return nil, err
	}
	s := &Session{tunnels: tunnels, events: make(chan Event, eventBuffer), opts: opts, cancel: cancel}
	for _, t := range tunnels {
		s.wg.Go(func() { s.supervise(ctx, t) })
	}
	return s, nil
}

// prepare validates the specs and fills their defaults.
func prepare(specs []Spec) ([]*tunnel, error) {
	if len(specs) == 0 {
		return nil, errors.New("no resource to open a tunnel for")
	}
	seen := map[string]bool{}
	var tunnels []*tunnel
	for _, s := range specs {
		r := s.Resource
		if seen[r.Name] {
			return nil, fmt.Errorf("resource %q is listed twice", r.Name)
		}
		seen[r.Name] = true
		if len(s.Servers) == 0 {
			s.Servers = []Server{{Addr: DefaultServer}}
		}
		if s.Engine == "" {
			s.Engine = EngineNative
		}
		switch s.Engine {
		case EngineNative:
		case EngineBore:
			if s.BorePath == "" {
				return nil, fmt.Errorf("resource %q: engine bore needs the path of the bore binary", r.Name)
			}
		default:
			return nil, fmt.Errorf("resource %q: unknown engine %q (want %s or %s)", r.Name, s.Engine, EngineNative, EngineBore)
		}
		if r.Address == "" {
			l, err := connstr.NewLocal(r.Name, r.Type, r.URL)
			if err != nil {
				return nil, err
			}
			s.Resource.Address = l.Address.String()
		}
		addr, err := connstr.ParseHostPort(s.Resource.Address)
		if err != nil {
			return nil, fmt.Errorf("resource %q: %w", r.Name, err)
		}
		tunnels = append(tunnels, &tunnel{spec: s, local: dialable(addr)})
	}
	return tunnels, nil
}

// start opens t's first link: on each server in order, retrying failures other than authentication, until one
// takes it.
func start(ctx context.Context, t *tunnel, opts Options) error {
	servers := t.spec.Servers
	var errs []error
	for i, server := range servers {
		l, attempts, err := startOn(ctx, t, i, opts)
		if err == nil {
			t.set(l, i)
			return nil
		}
		if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
			err = fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
		errs = append(errs, &StartError{Resource: t.spec.Resource.Name, Server: server.Addr, Attempts: attempts, Err: err})
		if ctx.Err() != nil {
			break
		}
		if i+1 < len(servers) {
			opts.report(Event{Resource: t.spec.Resource.Name, Kind: Switching, Server: server.Addr, Next: servers[i+1].Addr, Err: err})
		}
	}
	return errors.Join(errs...)
}

// startOn tries server i of t, retrying failures other than authentication.
func startOn(ctx context.Context, t *tunnel, i int, opts Options) (link, int, error) {
	attempts := 0
	backoff := retry.WithMaxRetries(uint64(opts.Retries), retry.NewConstant(opts.RetryDelay))
	l, err := retry.DoValue(ctx, backoff, func(ctx context.Context) (link, error) {
		attempts++
		l, err := t.startLink(ctx, i, t.spec.Port, opts)
		if err != nil {
			if !Retryable(err) || ctx.Err() != nil || attempts > opts.Retries {
				return nil, err
			}
			opts.report(Event{Resource: t.spec.Resource.Name, Kind: Retrying, Server: t.spec.Servers[i].Addr, Err: err, Delay: opts.RetryDelay})
			return nil, retry.RetryableError(err)
		}
		return l, nil
	})
	return l, attempts, err
}

func (o Options) report(ev Event) {
	if o.Report != nil {
		o.Report(ev)
	}
}

// supervise keeps t up until ctx ends: each time its link ends, it reports the tunnel down and reconnects it.
func (s *Session) supervise(ctx context.Context, t *tunnel) {
	for {
		l, server, public := t.current()
		err := l.Wait()
		if ctx.Err() != nil {
			l.Close()
			return
		}
		if err == nil {
			err = bore.ErrLinkLost
		}
		s.emit(Event{Resource: t.spec.Resource.Name, Kind: Down, Server: server.Addr, Public: public, Err: err})
		if !s.reconnect(ctx, t) {
			return
		}
	}
}

// reconnect brings t back up. It tries t's server first, asking for the public port it had, with backoff for up
// to the reconnect window; then each other server in turn, in the list's order after it (wrapping round), each
// for a window. A server that refuses the secret is left at once. It never goes back to a server it left while
// the one it found works. It returns false when ctx ended, or when every server was tried in vain (Lost).
func (s *Session) reconnect(ctx context.Context, t *tunnel) bool {
	name := t.spec.Resource.Name
	_, _, public := t.current()
	port := 0
	if _, p, err := net.SplitHostPort(public); err == nil {
		port, _ = strconv.Atoi(p)
	}
	servers := t.spec.Servers
	t.mu.Lock()
	first := t.server
	t.mu.Unlock()
	var errs []error
	for k := range servers {
		i := (first + k) % len(servers)
		want := t.spec.Port
		if k == 0 {
			want = port
		}
		l, err := s.tryServer(ctx, t, i, want)
		if err == nil {
			previousServer, previous := t.set(l, i)
			ev := Event{Resource: name, Kind: Up, Server: servers[i].Addr, Public: servers[i].public(l.PublicAddr())}
			if ev.Public != previous || ev.Server != previousServer.Addr {
				ev.Kind, ev.Previous, ev.PreviousServer = Moved, previous, previousServer.Addr
			}
			s.emit(ev)
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		errs = append(errs, fmt.Errorf("bore server %s: %s: %w", servers[i].Addr, Cause(err), err))
		if k+1 < len(servers) {
			s.emit(Event{Resource: name, Kind: Switching, Server: servers[i].Addr, Next: servers[(i+1)%len(servers)].Addr, Err: err})
		}
	}
	s.emit(Event{Resource: name, Kind: Lost, Err: errors.Join(errs...)})
	return false
}

// tryServer starts a link to server i of t with backoff until it works, the server refuses the secret, the
// reconnect window has passed or ctx ends. It asks for port first, and for any port when that one is taken.
func (s *Session) tryServer(ctx context.Context, t *tunnel, i, port int) (link, error) {
	backoff := retry.WithCappedDuration(s.opts.ReconnectMaxDelay,
		retry.WithJitterPercent(20, retry.NewExponential(s.opts.ReconnectDelay)))
	if s.opts.ReconnectWindow > 0 {
		backoff = retry.WithMaxDuration(s.opts.ReconnectWindow, backoff)
	}
	return retry.DoValue(ctx, backoff, func(ctx context.Context) (link, error) {
		l, err := t.startLink(ctx, i, port, s.opts)
		if errors.Is(err, bore.ErrPortUnavailable) && port != 0 {
			s.opts.Logger.Info("public port unavailable, asking for any port", "resource", t.spec.Resource.Name,
				"server", t.spec.Servers[i].Addr, "port", port, "err", err)
			l, err = t.startLink(ctx, i, 0, s.opts)
		}
		if err != nil {
			if !Retryable(err) {
				return nil, err
			}
			s.opts.Logger.Debug("reconnecting", "resource", t.spec.Resource.Name, "server", t.spec.Servers[i].Addr, "err", err)
			return nil, retry.RetryableError(err)
		}
		return l, nil
	})
}

// emit queues e; when the consumer falls behind, the oldest events are dropped so the latest state is there.
func (s *Session) emit(e Event) {
	for {
		select {
		case s.events <- e:
			return
		default:
		}
		select {
		case <-s.events:
		default:
		}
	}
}

// Tunnels returns the tunnels with their current servers and public addresses, in the order of the specs.
func (s *Session) Tunnels() []doc.Tunnel {
	out := make([]doc.Tunnel, 0, len(s.tunnels))
	for _, t := range s.tunnels {
		out = append(out, t.doc())
	}
	return out
}

// Activity returns the tunnels, as Tunnels does, with what each carried so far (Activity is nil for a tunnel whose
// engine does not count: an external bore relays the bytes itself).
func (s *Session) Activity() []doc.Tunnel {
	out := make([]doc.Tunnel, 0, len(s.tunnels))
	for _, t := range s.tunnels {
		d := t.doc()
		d.Activity = t.activity()
		out = append(out, d)
	}
	return out
}

// Events returns the tunnels' state changes: Down, then Up, Moved or Lost, with Switching between servers. It
// is closed by Close.
func (s *Session) Events() <-chan Event { return s.events }

// Close stops every tunnel and returns once everything the session started has ended.
func (s *Session) Close() error {
	s.once.Do(func() {
		s.cancel()
		s.wg.Wait()
		close(s.events)
	})
	return nil
}
