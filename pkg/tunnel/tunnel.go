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
	DefaultServer     = "bore.pub"
	DefaultRetries    = 2
	DefaultRetryDelay = 2 * time.Second
)

// Spec is one tunnel to open.
type Spec struct {
	Resource doc.Resource `json:"resource"`
	// Server is the bore server, HOST[:CONTROL_PORT]; empty means DefaultServer.
	Server string `json:"server,omitempty"`
	Secret string `json:"secret,omitempty"`
	// Engine is EngineNative (the default when empty) or EngineBore.
	Engine string `json:"engine,omitempty"`
	// BorePath is the bore executable, required for EngineBore (see FindBore).
	BorePath string `json:"borePath,omitempty"`
}

// Options tune Open. The zero value gives the defaults.
type Options struct {
	// Retries is how many times a failed start is retried; 0 means DefaultRetries, a negative value none.
	Retries int
	// RetryDelay is the pause between start attempts; 0 means DefaultRetryDelay.
	RetryDelay time.Duration
	// LocalTimeout bounds the check that the local service accepts connections. Default 2 s.
	LocalTimeout time.Duration
	// StartTimeout bounds one start attempt of an external bore process. Default 15 s.
	StartTimeout time.Duration
	// ReconnectDelay and ReconnectMaxDelay shape the backoff of a tunnel that died. Defaults 250 ms and 10 s.
	ReconnectDelay, ReconnectMaxDelay time.Duration
	// OnRetry, when set, is called before each retry of a failed start.
	OnRetry func(resource string, err error, delay time.Duration)
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

// EventKind says what happened to an open tunnel.
type EventKind int

const (
	// Down: the tunnel died (Err says why); it is being reconnected.
	Down EventKind = iota + 1
	// Up: the tunnel is up again at the same public address.
	Up
	// Moved: the tunnel is up again at a different public address (Public; Previous is the old one).
	Moved
)

func (k EventKind) String() string {
	switch k {
	case Down:
		return "down"
	case Up:
		return "up"
	case Moved:
		return "moved"
	}
	return "EventKind(" + strconv.Itoa(int(k)) + ")"
}

// Event is a change of an open tunnel's state.
type Event struct {
	Resource string
	Kind     EventKind
	Public   string // the public address now (the last known one for Down)
	Previous string // for Moved: the public address before
	Err      error  // for Down: the cause
}

// link is one running tunnel of an engine; *bore.Client is one.
type link interface {
	Start(ctx context.Context) error
	PublicAddr() string
	Events() <-chan bore.Event
	Wait() error
	Close() error
}

// tunnel is one resource's tunnel and its current link.
type tunnel struct {
	spec  Spec
	local connstr.HostPort // where the resource listens, as the engine dials it

	mu     sync.Mutex
	link   link
	public string
}

func (t *tunnel) current() (link, string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.link, t.public
}

func (t *tunnel) set(l link) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.link, t.public = l, l.PublicAddr()
}

func (t *tunnel) setPublic(addr string) (previous string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	previous, t.public = t.public, addr
	return previous
}

func (t *tunnel) doc() doc.Tunnel {
	_, public := t.current()
	return doc.Tunnel{Resource: t.spec.Resource.Name, Local: t.spec.Resource.Address, Public: public,
		Server: t.spec.Server, Engine: t.spec.Engine}
}

// newLink builds an engine link asking for public port (0: any).
func (t *tunnel) newLink(port int, opts Options) (link, error) {
	log := opts.Logger.With("resource", t.spec.Resource.Name)
	switch t.spec.Engine {
	case EngineNative:
		return bore.NewClient(bore.ClientConfig{Server: t.spec.Server, LocalHost: t.local.Host, LocalPort: t.local.Port,
			Port: port, Secret: t.spec.Secret, Reconnect: true,
			ReconnectDelay: opts.ReconnectDelay, ReconnectMaxDelay: opts.ReconnectMaxDelay, Logger: log})
	case EngineBore:
		return newBoreProcess(t.spec, t.local, port, opts.StartTimeout, log)
	}
	return nil, fmt.Errorf("unknown engine %q (want %s or %s)", t.spec.Engine, EngineNative, EngineBore)
}

// Session holds open tunnels and supervises them until Close.
type Session struct {
	tunnels []*tunnel
	events  chan Event
	opts    Options
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	once    sync.Once
}

const eventBuffer = 64

// Open checks that every resource's local service accepts connections, opens all the tunnels concurrently
// (retrying start failures) and returns once all are up. The tunnels then live until Close or until ctx is
// cancelled; call Close in both cases. On error nothing is left running: a *LocalError when a local service is
// not there (all of them joined), a *StartError when a tunnel could not be opened.
func Open(ctx context.Context, specs []Spec, opts Options) (*Session, error) {
	opts = opts.withDefaults()
	tunnels, err := prepare(specs)
	if err != nil {
		return nil, err
	}
	if err := checkLocals(ctx, tunnels, opts.LocalTimeout); err != nil {
		return nil, err
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
			if l, _ := t.current(); l != nil {
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
		if s.Server == "" {
			s.Server = DefaultServer
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

// start opens t's first link, retrying failures other than authentication.
func start(ctx context.Context, t *tunnel, opts Options) error {
	attempts := 0
	backoff := retry.WithMaxRetries(uint64(opts.Retries), retry.NewConstant(opts.RetryDelay))
	err := retry.Do(ctx, backoff, func(ctx context.Context) error {
		attempts++
		l, err := t.newLink(0, opts)
		if err != nil {
			return err
		}
		if err := l.Start(ctx); err != nil {
			if !Retryable(err) || ctx.Err() != nil || attempts > opts.Retries {
				return err
			}
			if opts.OnRetry != nil {
				opts.OnRetry(t.spec.Resource.Name, err, opts.RetryDelay)
			}
			return retry.RetryableError(err)
		}
		t.set(l)
		return nil
	})
	if err != nil {
		if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
			err = fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
		return &StartError{Resource: t.spec.Resource.Name, Server: t.spec.Server, Attempts: attempts, Err: err}
	}
	return nil
}

// supervise relays t's events until ctx ends, and replaces its link when the link ended for good (an external
// bore exited, or the native client gave up).
func (s *Session) supervise(ctx context.Context, t *tunnel) {
	name := t.spec.Resource.Name
	for {
		l, _ := t.current()
		down := false
		for ev := range l.Events() {
			switch ev.Kind {
			case bore.EventDown:
				down = true
				_, public := t.current()
				s.emit(Event{Resource: name, Kind: Down, Public: public, Err: ev.Err})
			case bore.EventReconnected:
				down = false
				s.emitUp(t, ev.Addr)
			}
		}
		err := l.Wait()
		if ctx.Err() != nil {
			l.Close()
			return
		}
		if !down {
			if err == nil {
				err = bore.ErrLinkLost
			}
			_, public := t.current()
			s.emit(Event{Resource: name, Kind: Down, Public: public, Err: err})
		}
		next, err := s.restart(ctx, t)
		if err != nil {
			return // ctx ended
		}
		t.mu.Lock()
		t.link = next
		t.mu.Unlock()
		s.emitUp(t, next.PublicAddr())
	}
}

func (s *Session) emitUp(t *tunnel, addr string) {
	previous := t.setPublic(addr)
	ev := Event{Resource: t.spec.Resource.Name, Kind: Up, Public: addr}
	if previous != addr {
		ev.Kind, ev.Previous = Moved, previous
	}
	s.emit(ev)
}

// restart opens a new link for t with backoff until it succeeds or ctx ends, asking for the previous public
// port first and for any port when that one is taken.
func (s *Session) restart(ctx context.Context, t *tunnel) (link, error) {
	_, public := t.current()
	want := 0
	if _, p, err := net.SplitHostPort(public); err == nil {
		want, _ = strconv.Atoi(p)
	}
	backoff := retry.WithCappedDuration(s.opts.ReconnectMaxDelay,
		retry.WithJitterPercent(20, retry.NewExponential(s.opts.ReconnectDelay)))
	return retry.DoValue(ctx, backoff, func(ctx context.Context) (link, error) {
		l, err := s.startLink(ctx, t, want)
		if errors.Is(err, bore.ErrPortUnavailable) && want != 0 {
			l, err = s.startLink(ctx, t, 0)
		}
		if err != nil {
			s.opts.Logger.Warn("reconnecting", "resource", t.spec.Resource.Name, "server", t.spec.Server, "err", err)
			return nil, retry.RetryableError(err)
		}
		return l, nil
	})
}

func (s *Session) startLink(ctx context.Context, t *tunnel, port int) (link, error) {
	l, err := t.newLink(port, s.opts)
	if err != nil {
		return nil, err
	}
	if err := l.Start(ctx); err != nil {
		return nil, err
	}
	return l, nil
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

// Tunnels returns the tunnels with their current public addresses, in the order of the specs.
func (s *Session) Tunnels() []doc.Tunnel {
	out := make([]doc.Tunnel, 0, len(s.tunnels))
	for _, t := range s.tunnels {
		out = append(out, t.doc())
	}
	return out
}

// Events returns the tunnels' state changes. It is closed by Close.
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
