package tunnel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stptunnel/stptunnel/pkg/bore"
)

// Failover between servers (docs/CONTRACT.md §3): a tunnel tries its servers in order at start, moves to the next when
// its server stays unreachable past the reconnect window or refuses the secret, and never goes back while the
// one it is on works.

// specOn is a spec for servers in order of preference.
func specOn(t *testing.T, engine, borePath string, servers ...*testServer) Spec {
	sp := spec("db", echoService(t), "", engine, borePath)
	sp.Servers = nil
	for _, s := range servers {
		sp.Servers = append(sp.Servers, Server{Addr: s.addr(), Secret: s.secret})
	}
	return sp
}

// recordEvents collects the events Open reports.
type recordEvents struct {
	mu     sync.Mutex
	events []Event
}

func (r *recordEvents) report(ev Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
}

func (r *recordEvents) kinds() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, ev := range r.events {
		out = append(out, ev.Kind.String())
	}
	return strings.Join(out, " ")
}

func TestFailoverAtStart(t *testing.T) {
	forEngine(t, func(t *testing.T, engine, borePath string) {
		first, second := startServer(t, ""), startServer(t, "")
		first.stop()
		var rec recordEvents
		opts := fast
		opts.Report = rec.report
		s, err := Open(context.Background(), []Spec{specOn(t, engine, borePath, first, second)}, opts)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if got := rec.kinds(); got != "retrying retrying switching" {
			t.Fatalf("events during Open: %s, want the usual retries on the first server, then the switch", got)
		}
		sw := rec.events[2]
		if sw.Server != first.addr() || sw.Next != second.addr() || Cause(sw.Err) != CauseRefused {
			t.Fatalf("Switching = %+v", sw)
		}
		tun := s.Tunnels()[0]
		if tun.Server != second.addr() {
			t.Fatalf("tunnel on %s, want %s", tun.Server, second.addr())
		}
		roundTrip(t, tun.Public)

		// The first server comes back: the tunnel stays where it is.
		first.start()
		select {
		case ev := <-s.Events():
			t.Fatalf("event %s %+v after the preferred server came back", ev.Kind, ev)
		case <-time.After(500 * time.Millisecond):
		}
		if n := first.srv.Stats().TunnelsTotal; n != 0 {
			t.Errorf("%d tunnels opened on the first server once it came back", n)
		}
	})
}

// A server that refuses the secret is left at once, with no retry, and the tunnel opens on the next.
func TestFailoverAtStartOnAuthFailure(t *testing.T) {
	first, second := startServer(t, "other"), startServer(t, "s3cret")
	var rec recordEvents
	opts := fast
	opts.Report = rec.report
	sp := specOn(t, "", "", first, second)
	sp.Servers[0].Secret = "s3cret" // not the first server's
	s, err := Open(context.Background(), []Spec{sp}, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := rec.kinds(); got != "switching" {
		t.Fatalf("events during Open: %s, want one switch and no retry", got)
	}
	if ev := rec.events[0]; Cause(ev.Err) != CauseAuth || ev.Next != second.addr() {
		t.Fatalf("Switching = %+v", ev)
	}
	if s.Tunnels()[0].Server != second.addr() {
		t.Fatalf("tunnel on %s", s.Tunnels()[0].Server)
	}
	eventually(t, "the refusal counted", func() bool { return first.srv.Stats().AuthFailures == 1 })
}

func TestFailoverAtStartAllDown(t *testing.T) {
	first, second := startServer(t, ""), startServer(t, "right")
	first.stop()
	sp := specOn(t, "", "", first, second)
	sp.Servers[1].Secret = "wrong"
	_, err := Open(context.Background(), []Spec{sp}, fast)
	var se *StartError
	if !errors.As(err, &se) {
		t.Fatalf("Open = %v, want *StartError", err)
	}
	for _, want := range []string{
		"bore server " + first.addr() + ", after 3 attempts: connection refused",
		"bore server " + second.addr() + ", after 1 attempt: it refused the secret",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "wrong") || strings.Contains(err.Error(), "right") {
		t.Errorf("message %q shows a secret", err)
	}
}

// The server dies during the session and never comes back: the tunnel keeps trying it for the reconnect window,
// then moves to the next server (Moved, with the new server and address), and stays there when the first comes
// back. When the second dies too, it goes round the list to the first.
func TestFailoverDuringSession(t *testing.T) {
	forEngine(t, func(t *testing.T, engine, borePath string) {
		first, second := startServer(t, ""), startServer(t, "")
		opts := fast
		opts.ReconnectWindow = time.Second
		s, err := Open(context.Background(), []Spec{specOn(t, engine, borePath, first, second)}, opts)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		before := s.Tunnels()[0]
		if before.Server != first.addr() {
			t.Fatalf("opened on %s, want the first server", before.Server)
		}

		first.stop()
		stopped := time.Now()
		expect(t, s, Down)
		sw := expect(t, s, Switching)
		if sw.Server != first.addr() || sw.Next != second.addr() || Cause(sw.Err) != CauseRefused {
			t.Fatalf("Switching = %+v", sw)
		}
		moved := expect(t, s, Moved)
		took := time.Since(stopped)
		if moved.Server != second.addr() || moved.PreviousServer != first.addr() || moved.Previous != before.Public {
			t.Fatalf("Moved = %+v", moved)
		}
		if took < opts.ReconnectWindow {
			t.Errorf("moved %v after the server died, before the reconnect window (%v) had passed", took, opts.ReconnectWindow)
		}
		t.Logf("moved to the second server %v after the first died (window %v)", took.Round(time.Millisecond), opts.ReconnectWindow)
		if got := s.Tunnels()[0]; got.Server != second.addr() || got.Public != moved.Public {
			t.Fatalf("Tunnels() = %+v", got)
		}
		roundTrip(t, moved.Public)

		// No flapping: the preferred server comes back, dies, comes back; the tunnel stays on the second.
		for range 3 {
			first.start()
			time.Sleep(100 * time.Millisecond)
			first.stop()
		}
		first.start()
		select {
		case ev := <-s.Events():
			t.Fatalf("event %s %+v while the first server flapped", ev.Kind, ev)
		case <-time.After(300 * time.Millisecond):
		}
		if n := first.srv.Stats().TunnelsTotal; n != 0 {
			t.Errorf("%d tunnels opened on the first server while it flapped", n)
		}
		roundTrip(t, moved.Public)

		// The second server dies: round the list, back to the first.
		second.stop()
		expect(t, s, Down)
		expect(t, s, Switching)
		back := expect(t, s, Moved)
		if back.Server != first.addr() || back.PreviousServer != second.addr() {
			t.Fatalf("Moved = %+v, want back on the first server", back)
		}
		roundTrip(t, back.Public)
	})
}

// A server that comes back within the window keeps the tunnel: flapping under the window is no move.
func TestFlappingServerWithinTheWindow(t *testing.T) {
	first, second := startServer(t, ""), startServer(t, "")
	opts := fast
	opts.ReconnectWindow = 10 * time.Second
	s, err := Open(context.Background(), []Spec{specOn(t, "", "", first, second)}, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	public := s.Tunnels()[0].Public
	for i := range 5 {
		first.stop()
		expect(t, s, Down)
		time.Sleep(time.Duration(i*50) * time.Millisecond)
		first.start()
		if up := expect(t, s, Up); up.Public != public || up.Server != first.addr() {
			t.Fatalf("flap %d: Up = %+v, want %s on the first server", i, up, public)
		}
	}
	roundTrip(t, public)
	if n := second.srv.Stats().TunnelsTotal; n != 0 {
		t.Errorf("%d tunnels opened on the second server", n)
	}
}

// A server that starts refusing the secret during the session is left at once (no window) for the next.
func TestFailoverOnAuthFailureDuringSession(t *testing.T) {
	first, second := startServer(t, "one"), startServer(t, "two")
	opts := fast
	opts.ReconnectWindow = time.Minute
	sp := specOn(t, "", "", first, second)
	s, err := Open(context.Background(), []Spec{sp}, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	first.stop()
	expect(t, s, Down)
	first.secret = "rotated"
	first.start()
	began := time.Now()
	sw := expect(t, s, Switching)
	if Cause(sw.Err) != CauseAuth || !errors.Is(sw.Err, bore.ErrInvalidSecret) {
		t.Fatalf("Switching = %+v, want the refused secret", sw)
	}
	if moved := expect(t, s, Moved); moved.Server != second.addr() {
		t.Fatalf("Moved = %+v", moved)
	}
	if d := time.Since(began); d > opts.ReconnectWindow/2 {
		t.Errorf("moved %v after the refusal: the window was waited for", d)
	}
}

// Every server stays unreachable: after a window on each, the tunnel is lost, the event says why for each server,
// and nothing is left running.
func TestFailoverAllServersLost(t *testing.T) {
	forEngine(t, func(t *testing.T, engine, borePath string) {
		first, second := startServer(t, ""), startServer(t, "")
		opts := fast
		opts.ReconnectWindow = 500 * time.Millisecond
		base := runtime.NumGoroutine()
		s, err := Open(context.Background(), []Spec{specOn(t, engine, borePath, first, second)}, opts)
		if err != nil {
			t.Fatal(err)
		}
		first.stop()
		second.stop()
		began := time.Now()
		expect(t, s, Down)
		expect(t, s, Switching)
		lost := expect(t, s, Lost)
		t.Logf("lost %v after both servers died (window %v): %v", time.Since(began).Round(time.Millisecond), opts.ReconnectWindow, lost.Err)
		for _, want := range []string{first.addr(), second.addr(), CauseRefused} {
			if !strings.Contains(lost.Err.Error(), want) {
				t.Errorf("Lost %q does not say %q", lost.Err, want)
			}
		}
		if d := time.Since(began); d < 2*opts.ReconnectWindow {
			t.Errorf("lost after %v, before each server had its window", d)
		}
		s.Close()
		waitGoroutines(t, base)
	})
}

func TestParseServers(t *testing.T) {
	env := map[string]string{"EU_SECRET": "eu-s3cret", "EMPTY": ""}
	getenv := func(k string) string { return env[k] }
	tests := []struct {
		entries []string
		secret  string
		want    string // addr=secret, ...
		err     string
	}{
		{nil, "", "bore.pub=", ""},
		{nil, "all", "bore.pub=all", ""},
		{[]string{"a.example.com", "b.example.com:9000"}, "all", "a.example.com=all b.example.com:9000=all", ""},
		{[]string{"a.example.com, b.example.com#EU_SECRET,,"}, "all", "a.example.com=all b.example.com=eu-s3cret", ""},
		{[]string{"[::1]:7835#EU_SECRET", "bore.pub"}, "", "[::1]:7835=eu-s3cret bore.pub=", ""},
		{[]string{"a.example.com", "A.example.com:7835"}, "", "", `listed twice`},
		{[]string{"a.example.com#MISSING"}, "", "", `its secret variable MISSING is not set`},
		{[]string{"a.example.com#EMPTY"}, "", "", `EMPTY is not set (or empty)`},
		{[]string{"a.example.com#eu-s3cret"}, "", "", `is not an environment variable name`},
		{[]string{"a.example.com:notaport"}, "", "", `invalid server port`},
		{[]string{"user@a.example.com"}, "", "", `want HOST[:CONTROL_PORT][#SECRET_VARIABLE]`},
	}
	for _, tt := range tests {
		servers, err := ParseServers(tt.entries, tt.secret, getenv)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseServers(%q) = %v, want an error saying %q", tt.entries, err, tt.err)
			}
			if err != nil && strings.Contains(err.Error(), "eu-s3cret") && !strings.Contains(strings.Join(tt.entries, ""), "eu-s3cret") {
				t.Errorf("error %q shows a secret", err)
			}
			continue
		}
		var got []string
		for _, s := range servers {
			got = append(got, s.Addr+"="+s.Secret)
		}
		if err != nil || strings.Join(got, " ") != tt.want {
			t.Errorf("ParseServers(%q) = %v, %v; want %s", tt.entries, got, err, tt.want)
		}
	}
}

// The detached holder records the server each tunnel is on, and follows a tunnel that moves to another: that
// record is what `tunnel status` shows. A tunnel lost for good ends the holder, which says why.
func TestHoldFollowsFailover(t *testing.T) {
	first, second := startServer(t, ""), startServer(t, "")
	dir := t.TempDir()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	held := make(chan error, 1)
	var rec recordEvents
	go func() { held <- Hold(context.Background(), inR, outW, dir, fast, rec.report) }()
	go func() {
		fmt.Fprintf(inW, `{"specs":[{"resource":{"name":"db","type":"tcp","address":%q},"servers":[{"addr":%q},{"addr":%q}]}],"reconnectWindow":%d}`,
			echoService(t), first.addr(), second.addr(), int64(300*time.Millisecond))
		inW.Close()
	}()
	var r ready
	if err := json.NewDecoder(outR).Decode(&r); err != nil || r.Error != "" || r.Tunnels[0].Server != first.addr() {
		t.Fatalf("ready = %+v, %v", r, err)
	}
	first.stop()
	eventually(t, "the record names the second server", func() bool {
		st, err := ReadState(dir)
		return err == nil && st.Tunnels[0].Server == second.addr()
	})
	st, _ := ReadState(dir)
	roundTrip(t, st.Tunnels[0].Public)

	second.stop()
	select {
	case err := <-held:
		if err == nil || !strings.Contains(err.Error(), "tunnel db is lost") {
			t.Fatalf("Hold = %v, want the lost tunnel", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Hold still runs 20 s after every server died")
	}
	if _, err := ReadState(dir); !errors.Is(err, ErrNoSession) {
		t.Errorf("Hold left its record: %v", err)
	}
	if !strings.Contains(rec.kinds(), "down switching moved down switching lost") {
		t.Errorf("events reported: %s", rec.kinds())
	}
}
