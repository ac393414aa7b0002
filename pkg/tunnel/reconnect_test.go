package tunnel

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stptunnel/stptunnel/internal/echotest"
	"github.com/stptunnel/stptunnel/pkg/bore"
)

// The session's one reconnection loop, with both engines: a native link (*bore.Client) and an external bore
// process end when their server goes away, and the session starts the next link.

// forEngine runs test once per engine, with the bore path the external engine needs.
func forEngine(t *testing.T, test func(t *testing.T, engine, borePath string)) {
	for _, engine := range []string{EngineNative, EngineBore} {
		t.Run(engine, func(t *testing.T) {
			borePath := ""
			if engine == EngineBore {
				borePath = boreStandIn(t)
			}
			test(t, engine, borePath)
		})
	}
}

// expect waits for the session's next event and checks its kind.
func expect(t *testing.T, s *Session, kind EventKind) Event {
	t.Helper()
	ev := nextEvent(t, s)
	if ev.Kind != kind {
		t.Fatalf("event %s %+v, want %s", ev.Kind, ev, kind)
	}
	return ev
}

// After the server restarts on its control port, the tunnel gets its public port back (Up); when that port was
// taken meanwhile, it comes back on another port of the same server (Moved).
func TestReconnectGetsThePortBack(t *testing.T) {
	forEngine(t, func(t *testing.T, engine, borePath string) {
		srv := startServer(t, "")
		s, err := Open(context.Background(), []Spec{spec("db", echoService(t), srv.addr(), engine, borePath)}, fast)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		first := s.Tunnels()[0].Public

		srv.stop()
		if down := expect(t, s, Down); down.Server != srv.addr() || down.Public != first || !errors.Is(down.Err, bore.ErrLinkLost) {
			t.Fatalf("Down = %+v", down)
		}
		srv.start()
		if up := expect(t, s, Up); up.Public != first || up.Server != srv.addr() {
			t.Fatalf("Up = %+v, want %s on %s", up, first, srv.addr())
		}
		roundTrip(t, first)

		// The public port is taken while the server is down, before it starts again: the tunnel cannot get it back.
		srv.stop()
		expect(t, s, Down)
		squatter, err := net.Listen("tcp", first)
		if err != nil {
			t.Fatalf("could not take the public port: %v", err)
		}
		defer squatter.Close()
		srv.start()
		moved := expect(t, s, Moved)
		if moved.Public == first || moved.Previous != first || moved.Server != srv.addr() || moved.PreviousServer != srv.addr() {
			t.Fatalf("Moved = %+v, want a new port of %s (was %s)", moved, srv.addr(), first)
		}
		if got := s.Tunnels()[0]; got.Public != moved.Public || got.Server != srv.addr() {
			t.Fatalf("Tunnels() = %+v after %+v", got, moved)
		}
		roundTrip(t, moved.Public)
	})
}

// A server that starts refusing the secret is final: the tunnel is lost at once, not after the reconnect window,
// and the event says why.
func TestReconnectAuthFailureIsFinal(t *testing.T) {
	forEngine(t, func(t *testing.T, engine, borePath string) {
		srv := startServer(t, "one")
		sp := spec("db", echoService(t), srv.addr(), engine, borePath)
		sp.Servers[0].Secret = "one"
		opts := fast
		opts.ReconnectWindow = time.Minute
		s, err := Open(context.Background(), []Spec{sp}, opts)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		srv.stop()
		expect(t, s, Down)
		srv.secret = "two"
		srv.start()
		restarted := time.Now()
		lost := expect(t, s, Lost)
		if Cause(lost.Err) != CauseAuth || !strings.Contains(lost.Err.Error(), srv.addr()) {
			t.Fatalf("Lost = %v, want an authentication failure naming %s", lost.Err, srv.addr())
		}
		if d := time.Since(restarted); d > opts.ReconnectWindow/2 {
			t.Errorf("lost %v after the server came back refusing the secret: the window was waited for", d)
		}
		t.Logf("refused secret reported %v after the server came back: %v", time.Since(restarted).Round(time.Millisecond), lost.Err)
	})
}

// With a negative reconnect window a tunnel retries its server for as long as it runs (bore local's rule).
func TestReconnectForever(t *testing.T) {
	srv := startServer(t, "")
	opts := fast
	opts.ReconnectWindow = -1
	s, err := Open(context.Background(), []Spec{spec("db", echoService(t), srv.addr(), "", "")}, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	srv.stop()
	expect(t, s, Down)
	select {
	case ev := <-s.Events():
		t.Fatalf("event %s %+v while the server was down", ev.Kind, ev)
	case <-time.After(3 * fast.ReconnectWindow):
	}
	srv.start()
	expect(t, s, Up)
}

// The local service need not be there at start with NoLocalCheck (bore local): visitors reach it once it is.
func TestOpenWithoutLocalCheck(t *testing.T) {
	srv := startServer(t, "")
	local := closedPort(t)
	if _, err := Open(context.Background(), []Spec{spec("db", local, srv.addr(), "", "")}, fast); err == nil {
		t.Fatal("Open succeeded with nothing listening locally")
	}
	opts := fast
	opts.NoLocalCheck = true
	s, err := Open(context.Background(), []Spec{spec("db", local, srv.addr(), "", "")}, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ln, err := net.Listen("tcp", local)
	if err != nil {
		t.Skipf("the local port was taken meanwhile: %v", err)
	}
	ln.Close()
	_, port, _ := net.SplitHostPort(local)
	echoOn(t, port)
	roundTrip(t, s.Tunnels()[0].Public)
}

// echoOn starts the echo service on a given loopback port.
func echoOn(t *testing.T, port string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		t.Fatal(err)
	}
	echotest.Serve(t, ln)
}

// A spec's Port is asked for at start; a start that cannot have it fails rather than taking another.
func TestOpenAsksForThePort(t *testing.T) {
	srv := startServer(t, "")
	free := closedPort(t)
	_, p, _ := net.SplitHostPort(free)
	port, _ := strconv.Atoi(p)
	sp := spec("db", echoService(t), srv.addr(), "", "")
	sp.Port = port
	s, err := Open(context.Background(), []Spec{sp}, fast)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Tunnels()[0].Public; got != free {
		t.Errorf("public %s, want %s", got, free)
	}
	opts := fast
	opts.Retries = -1
	sp.Resource.Name = "again"
	if _, err := Open(context.Background(), []Spec{sp}, opts); !errors.Is(err, bore.ErrPortUnavailable) {
		t.Errorf("a second tunnel asking for the same port: %v, want ErrPortUnavailable", err)
	}
	s.Close()
}

// Events never block the session: without a consumer the latest are kept.
func TestEventsNeverBlock(t *testing.T) {
	s := &Session{events: make(chan Event, eventBuffer)}
	for i := range 3 * eventBuffer {
		s.emit(Event{Kind: Up, Public: strconv.Itoa(i)})
	}
	if n := len(s.events); n != eventBuffer {
		t.Fatalf("%d events buffered, want %d", n, eventBuffer)
	}
	var last Event
	for range eventBuffer {
		last = <-s.events
	}
	if last.Public != strconv.Itoa(3*eventBuffer-1) {
		t.Errorf("last event %+v, want the newest", last)
	}
}
