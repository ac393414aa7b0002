package tunnel

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stptunnel/stptunnel/pkg/bore"
	"github.com/stptunnel/stptunnel/pkg/doc"
)

func TestCheckLocal(t *testing.T) {
	ctx := context.Background()
	if err := CheckLocal(ctx, echoService(t), time.Second); err != nil {
		t.Errorf("listening service: %v", err)
	}
	if err := CheckLocal(ctx, closedPort(t), time.Second); err == nil {
		t.Error("closed port: no error")
	}
}

func TestOpenRefusesWhenLocalServiceIsDown(t *testing.T) {
	srv := startServer(t, "")
	down := closedPort(t)
	_, err := Open(context.Background(), []Spec{
		spec("db", echoService(t), srv.addr(), "", ""),
		spec("cache", down, srv.addr(), "", ""),
	}, fast)
	var le *LocalError
	if !errors.As(err, &le) {
		t.Fatalf("Open = %v, want a *LocalError", err)
	}
	if le.Resource != "cache" || le.Address != down {
		t.Errorf("LocalError names %s %s, want cache %s", le.Resource, le.Address, down)
	}
	for _, want := range []string{"cache", down, "start it"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q does not contain %q", err, want)
		}
	}
	if n := srv.srv.Stats().TunnelsTotal; n != 0 {
		t.Errorf("%d tunnels were opened before the check failed", n)
	}
}

func TestCauseAndRetryable(t *testing.T) {
	tests := []struct {
		err       error
		cause     string
		retryable bool
	}{
		{&bore.DialError{Addr: "x:1", Err: fmt.Errorf("dial: %w", errConnRefused())}, CauseRefused, true},
		{&bore.DialError{Addr: "x:1", Err: errors.New("no such host")}, CauseUnreachable, true},
		{&bore.ServerError{Message: "invalid secret"}, CauseAuth, false},
		{bore.ErrSecretRequired, CauseAuth, false},
		{&bore.ServerError{Message: "port already in use"}, CausePort, true},
		{fmt.Errorf("%w: bad frame", bore.ErrProtocol), CauseOther, true},
		{classifyOutput("Error: could not connect to 127.0.0.1:7835\n\nCaused by:\n    Connection refused (os error 111)"), CauseRefused, true},
		{classifyOutput("Error: server error: invalid secret"), CauseAuth, false},
		{classifyOutput("Error: server requires authentication, but no client secret was provided"), CauseAuth, false},
		{classifyOutput("Error: server error: port already in use"), CausePort, true},
		{classifyOutput("Error: could not connect to nowhere.invalid:7835: failed to lookup address"), CauseUnreachable, true},
	}
	for i, tt := range tests {
		if got := Cause(tt.err); got != tt.cause {
			t.Errorf("%d: Cause(%v) = %q, want %q", i, tt.err, got, tt.cause)
		}
		if got := Retryable(tt.err); got != tt.retryable {
			t.Errorf("%d: Retryable(%v) = %v, want %v", i, tt.err, got, tt.retryable)
		}
	}
	if err := classifyOutput("some unrelated line"); err != nil {
		t.Errorf("unrelated output classified as %v", err)
	}
}

func errConnRefused() error {
	_, err := net.Dial("tcp", "127.0.0.1:1")
	return err
}

func TestParseListening(t *testing.T) {
	tests := []struct {
		line string
		port int
		ok   bool
	}{
		{"\x1b[2m2024-01-01T00:00:00.000000Z\x1b[0m \x1b[32m INFO\x1b[0m \x1b[2mbore_cli::client\x1b[0m\x1b[2m:\x1b[0m listening at bore.pub:54321", 54321, true},
		{"2024-01-01T00:00:00Z  INFO bore_cli::client: listening at 127.0.0.1:1025", 1025, true},
		{"listening at \x1b[1m[::1]:7000\x1b[0m", 7000, true},
		{"\x1b[32m INFO\x1b[0m connected to server remote_port=54321", 0, false},
		{"listening at bore.pub:99999", 0, false},
		{"listening at bore.pub", 0, false},
	}
	for _, tt := range tests {
		port, ok := ParseListening(tt.line)
		if port != tt.port || ok != tt.ok {
			t.Errorf("ParseListening(%q) = %d, %v; want %d, %v", tt.line, port, ok, tt.port, tt.ok)
		}
	}
	if got := StripANSI("\x1b[2mdim\x1b[0m \x1b[1;31mred\x1b[0m"); got != "dim red" {
		t.Errorf("StripANSI = %q", got)
	}
}

func TestOpenNative(t *testing.T) {
	srv := startServer(t, "s3cret")
	local, otherLocal := echoService(t), echoService(t)
	base := runtime.NumGoroutine()
	sp := spec("db", local, srv.addr(), "", "")
	sp.Servers[0].Secret = "s3cret"
	began := time.Now()
	other := spec("other", otherLocal, srv.addr(), EngineNative, "")
	other.Servers[0].Secret = "s3cret"
	s, err := Open(context.Background(), []Spec{sp, other}, fast)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("2 tunnels up in %v", time.Since(began))
	tunnels := s.Tunnels()
	if len(tunnels) != 2 {
		t.Fatalf("Tunnels() = %v", tunnels)
	}
	got := tunnels[0]
	if got.Resource != "db" || got.Local != local || got.Server != srv.addr() || got.Engine != EngineNative ||
		!strings.HasPrefix(got.Public, "127.0.0.1:") {
		t.Errorf("Tunnels()[0] = %+v", got)
	}
	roundTrip(t, got.Public)
	roundTrip(t, tunnels[1].Public)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-s.Events(); ok {
		t.Error("events not closed by Close")
	}
	eventually(t, "the server closes the public ports", func() bool { return srv.srv.Stats().TunnelsOpen == 0 })
	waitGoroutines(t, base)
}

// waitGoroutines checks that the goroutine count comes back to base (the runtime needs a moment to retire the
// goroutines that just returned).
func waitGoroutines(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines left, want %d:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestOpenRetriesThenNamesServerAndCause(t *testing.T) {
	srv := startServer(t, "")
	dead := srv.addr()
	srv.stop()
	var retries atomic.Int32
	opts := fast
	opts.Report = func(ev Event) {
		retries.Add(1)
		if ev.Kind != Retrying || ev.Resource != "db" || ev.Server != dead || ev.Delay != fast.RetryDelay || ev.Err == nil {
			t.Errorf("event during Open: %+v", ev)
		}
	}
	began := time.Now()
	_, err := Open(context.Background(), []Spec{spec("db", echoService(t), dead, "", "")}, opts)
	var se *StartError
	if !errors.As(err, &se) {
		t.Fatalf("Open = %v, want a *StartError", err)
	}
	if se.Attempts != 3 || retries.Load() != 2 {
		t.Errorf("%d attempts, %d retries; want 3 and 2", se.Attempts, retries.Load())
	}
	if elapsed := time.Since(began); elapsed < 2*fast.RetryDelay {
		t.Errorf("3 attempts took %v: the retry delay was not honoured", elapsed)
	}
	for _, want := range []string{"db", dead, CauseRefused, "3 attempts"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q does not contain %q", err, want)
		}
	}
}

func TestOpenDoesNotRetryAuthFailure(t *testing.T) {
	srv := startServer(t, "right")
	sp := spec("db", echoService(t), srv.addr(), "", "")
	sp.Servers[0].Secret = "wrong"
	_, err := Open(context.Background(), []Spec{sp}, fast)
	var se *StartError
	if !errors.As(err, &se) || se.Attempts != 1 || Cause(err) != CauseAuth {
		t.Fatalf("Open = %v, want an auth failure after 1 attempt", err)
	}
	if !strings.Contains(err.Error(), "--secret") {
		t.Errorf("message %q gives no hint about the secret", err)
	}
}

func TestOpenClosesTheOthersWhenOneFails(t *testing.T) {
	srv := startServer(t, "")
	other := startServer(t, "")
	dead := other.addr()
	other.stop()
	_, err := Open(context.Background(), []Spec{
		spec("ok", echoService(t), srv.addr(), "", ""),
		spec("bad", echoService(t), dead, "", ""),
	}, fast)
	if err == nil {
		t.Fatal("Open succeeded against a dead server")
	}
	eventually(t, "the tunnel that opened is closed", func() bool { return srv.srv.Stats().TunnelsOpen == 0 })
}

func TestExternalEngine(t *testing.T) {
	srv := startServer(t, "s3cret")
	sp := spec("db", echoService(t), srv.addr(), EngineBore, boreStandIn(t))
	sp.Servers[0].Secret = "s3cret"
	base := runtime.NumGoroutine()
	s, err := Open(context.Background(), []Spec{sp}, fast)
	if err != nil {
		t.Fatal(err)
	}
	tun := s.Tunnels()[0]
	if tun.Engine != EngineBore || !strings.HasPrefix(tun.Public, "127.0.0.1:") {
		t.Errorf("tunnel = %+v", tun)
	}
	roundTrip(t, tun.Public)
	s.Close()
	eventually(t, "bore stops and the server closes the public port", func() bool { return srv.srv.Stats().TunnelsOpen == 0 })
	waitGoroutines(t, base)
}

func TestExternalEngineStartFailures(t *testing.T) {
	srv := startServer(t, "right")
	dead := startServer(t, "")
	deadAddr := dead.addr()
	dead.stop()
	borePath := boreStandIn(t)
	tests := []struct {
		name, server, secret, cause string
		attempts                    int
	}{
		{"refused", deadAddr, "", CauseRefused, 3},
		{"auth", srv.addr(), "wrong", CauseAuth, 1},
		{"no secret", srv.addr(), "", CauseAuth, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sp := spec("db", echoService(t), tt.server, EngineBore, borePath)
			sp.Servers[0].Secret = tt.secret
			_, err := Open(context.Background(), []Spec{sp}, fast)
			var se *StartError
			if !errors.As(err, &se) || Cause(err) != tt.cause || se.Attempts != tt.attempts {
				t.Fatalf("Open = %v; want cause %q after %d attempts", err, tt.cause, tt.attempts)
			}
		})
	}
}

func TestBoreEnvKeepsTheSecretOffTheCommandLine(t *testing.T) {
	p, err := newBoreProcess(Spec{BorePath: "bore"}, Server{Addr: "bore.pub:7835", Secret: "s3cret"},
		dialable(mustHostPort(t, "0.0.0.0:5432")), 4242, time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := "local 5432 --local-host 127.0.0.1 --to bore.pub --port 4242"
	if got := strings.Join(p.args, " "); got != want {
		t.Errorf("args = %q, want %q", got, want)
	}
	env := boreEnv([]string{"PATH=/bin", "BORE_SECRET=old", "BORE_SERVER=elsewhere"}, "s3cret")
	if got := strings.Join(env, " "); got != "PATH=/bin BORE_SECRET=s3cret" {
		t.Errorf("env = %q", got)
	}
}

func TestFindBore(t *testing.T) {
	dir := t.TempDir()
	notExec := filepath.Join(dir, "plain")
	os.WriteFile(notExec, nil, 0o644)
	if _, err := FindBore(notExec, ""); err == nil && runtime.GOOS != "windows" {
		t.Error("a file that is not executable was accepted")
	}
	if _, err := FindBore(filepath.Join(dir, "absent"), ""); err == nil {
		t.Error("a missing --bore-path was accepted")
	}
	name := BoreAssetName(runtime.GOOS, runtime.GOARCH)
	if name == "" {
		t.Skipf("no bundled bore name for %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	asset := filepath.Join(dir, "assets", "bore", name)
	os.MkdirAll(filepath.Dir(asset), 0o755)
	os.WriteFile(asset, []byte("#!/bin/sh\n"), 0o755)
	got, err := FindBore("", filepath.Join(dir, "stptunnel"))
	if err != nil || got != asset {
		t.Errorf("FindBore beside the executable = %q, %v; want %q", got, err, asset)
	}
	t.Setenv("PATH", dir)
	os.WriteFile(filepath.Join(dir, "bore"), []byte("#!/bin/sh\n"), 0o755)
	got, err = FindBore("", filepath.Join(t.TempDir(), "stptunnel"))
	if err != nil || got != filepath.Join(dir, "bore") {
		t.Errorf("FindBore on PATH = %q, %v", got, err)
	}
	t.Setenv("PATH", t.TempDir())
	if _, err := FindBore("", filepath.Join(t.TempDir(), "stptunnel")); err == nil || !strings.Contains(err.Error(), "--bore-path") {
		t.Errorf("FindBore with no bore = %v, want an error suggesting --bore-path", err)
	}
}

// TestTunnelHost: the server's public ports listen on 127.0.0.2 only (its "private address", where the functions
// reach it), its control port on 127.0.0.1 (where this machine dials it). Every public address the session
// reports, at start and after a reconnection, names the tunnel host; DialedAddr names the dialled one.
func TestTunnelHost(t *testing.T) {
	srv := &testServer{t: t, tunnels: "127.0.0.2"}
	srv.start()
	t.Cleanup(srv.stop)
	sp := spec("db", echoService(t), srv.addr(), "", "")
	sp.Servers[0].TunnelHost = "127.0.0.2"
	s, err := Open(context.Background(), []Spec{sp}, fast)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tun := s.Tunnels()[0]
	host, port, _ := net.SplitHostPort(tun.Public)
	if host != "127.0.0.2" || tun.Server != srv.addr() {
		t.Fatalf("tunnel %+v: want public 127.0.0.2:PORT, server %s", tun, srv.addr())
	}
	if got, want := DialedAddr(tun), "127.0.0.1:"+port; got != want {
		t.Errorf("DialedAddr = %s, want %s", got, want)
	}
	roundTrip(t, tun.Public)
	if c, err := net.DialTimeout("tcp", DialedAddr(tun), time.Second); err == nil {
		c.Close()
		t.Errorf("the public port answers on the dialled host too: the test proves nothing")
	}
	// tunnel status probes the public address, then the dialled one: alive when either answers.
	if err := ProbeTunnel(context.Background(), tun, time.Second); err != nil {
		t.Errorf("ProbeTunnel at the tunnel host: %v", err)
	}
	if err := ProbeTunnel(context.Background(), doc.Tunnel{Public: "127.0.0.3:" + port, Server: "127.0.0.2:7835"}, time.Second); err != nil {
		t.Errorf("ProbeTunnel, the tunnel host out of reach but the dialled host answering: %v", err)
	}
	if err := ProbeTunnel(context.Background(), doc.Tunnel{Public: "127.0.0.3:" + port, Server: "127.0.0.1:7835"}, time.Second); err == nil ||
		!strings.Contains(err.Error(), "127.0.0.1:"+port) {
		t.Errorf("ProbeTunnel, neither answering: %v, want an error naming both", err)
	}

	srv.stop()
	if ev := nextEvent(t, s); ev.Kind != Down || ev.Public != tun.Public {
		t.Fatalf("after the server stopped: %+v, want Down at %s", ev, tun.Public)
	}
	srv.start()
	up := nextEvent(t, s)
	if h, _, _ := net.SplitHostPort(up.Public); (up.Kind != Up && up.Kind != Moved) || h != "127.0.0.2" || s.Tunnels()[0].Public != up.Public {
		t.Fatalf("after the server restarted: %+v (tunnels %+v), want Up or Moved at 127.0.0.2", up, s.Tunnels())
	}
	roundTrip(t, up.Public)
}

func TestParseTunnelHost(t *testing.T) {
	for _, tt := range []struct{ in, want, err string }{
		{"", "", ""},
		{" 10.0.1.5 ", "10.0.1.5", ""},
		{"fd00::5", "fd00::5", ""},
		{"[fd00::5]", "fd00::5", ""},
		{"::ffff:10.0.1.5", "10.0.1.5", ""},
		{"Bore.Internal.Example.com", "bore.internal.example.com", ""},
		{"ip-10-0-1-5.eu-west-1.compute.internal", "ip-10-0-1-5.eu-west-1.compute.internal", ""},
		{"10.0.1.5:7835", "", "without a port"},
		{"[fd00::5]:7835", "", "without a port"},
		{"bore.example.com:7835", "", "without a port"},
		{"http://10.0.1.5", "", "an IP address or a DNS name"},
		{"bad_host", "", "an IP address or a DNS name"},
		{"fe80::1%eth0", "", "zoned"},
	} {
		got, err := ParseTunnelHost(tt.in)
		if got != tt.want || (tt.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("ParseTunnelHost(%q) = %q, %v; want %q, error containing %q", tt.in, got, err, tt.want, tt.err)
		}
	}
}
