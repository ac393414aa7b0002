package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/stptunnel/stptunnel/internal/echotest"
	"github.com/stptunnel/stptunnel/pkg/awssim"
	"github.com/stptunnel/stptunnel/pkg/bore"
	"github.com/stptunnel/stptunnel/pkg/bore/boretest"
	"github.com/stptunnel/stptunnel/pkg/connstr"
	"github.com/stptunnel/stptunnel/pkg/detect"
	"github.com/stptunnel/stptunnel/pkg/doc"
	"github.com/stptunnel/stptunnel/pkg/tunnel"
)

// The dev composition, in Go: the real SDK against the emulator, a real bore server and a local echo service
// on loopback. The stack is deployed the usual way (its variable names the cloud database).

const deployed = "postgres://admin:cl0ud@db.cluster-x.eu-west-1.rds.amazonaws.com:5432/app"

type fixture struct {
	sim    *awssim.Server
	server *bore.Server
	echo   net.Listener
	env    Env
	events *recorder
	opts   DevOptions
}

// recorder keeps the events a session reports, safe for concurrent use.
type recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *recorder) report(e Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

// kinds names the events in order: "Found", "TunnelStarted", ... The activity reported once a second is left
// out: how many there are depends on timing (TestDevReportsActivity checks them).
func (r *recorder) kinds() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var names []string
	for _, e := range r.events {
		if _, ok := e.(TunnelActivity); ok {
			continue
		}
		names = append(names, strings.TrimPrefix(fmt.Sprintf("%T", e), "session."))
	}
	return strings.Join(names, " ")
}

// startEcho starts a local echo service (a stand-in database), closed at the end of the test.
func startEcho(t *testing.T) net.Listener {
	ln, _ := echotest.Start(t)
	return ln
}

// echoThrough checks that bytes sent to addr come back (from the echo service behind the tunnel).
func echoThrough(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("ping")); err != nil {
		return err
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		return fmt.Errorf("echo through %s: %q, %v", addr, buf, err)
	}
	return nil
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	sim, err := awssim.New(awssim.Options{Region: "eu-west-1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	sim.PutFunction(awssim.Function{Name: "api", Env: map[string]string{"STP_POSTGRES_DB_CONNECTION_STRING": deployed, "LOG_LEVEL": "debug"}})
	sim.PutFunction(awssim.Function{Name: "other", Env: map[string]string{"QUEUE": "jobs"}})
	server := boretest.Start(t, bore.ServerConfig{})
	echo := startEcho(t)
	local, err := connstr.ParseLocal(fmt.Sprintf("postgresDb=postgres://app:l0cal@127.0.0.1:%d/app", echo.Addr().(*net.TCPAddr).Port))
	if err != nil {
		t.Fatal(err)
	}
	locals := []Local{{Local: local, Flag: "--local postgresDb"}}
	cfg := aws.Config{Region: "eu-west-1", BaseEndpoint: aws.String(sim.URL()),
		Credentials: credentials.NewStaticCredentialsProvider("TEST", "TEST", "")}
	f := &fixture{sim: sim, server: server, echo: echo, events: &recorder{}}
	f.env = Env{AWSConfig: func(context.Context, string) (aws.Config, error) { return cfg.Copy(), nil },
		StateDir: t.TempDir(), Report: f.events.report}
	f.opts = DevOptions{
		Detect: DetectOptions{Locals: locals, VPC: detect.VPCCheck, Public: connstr.HostPort{Host: "127.0.0.1", Port: 65535}},
		Tunnel: TunnelOptions{Locals: locals, Servers: []tunnel.Server{{Addr: server.Addr().String()}}, Engine: tunnel.EngineNative},
		Patch:  PatchOptions{Concurrency: 4},
	}
	return f
}

func TestDevPatchesDuringAndRestoresAfter(t *testing.T) {
	f := newFixture(t)
	before, _ := f.sim.Env("api")
	var during map[string]string
	f.opts.During = func(ctx context.Context, d *doc.Document) error {
		during, _ = f.sim.Env("api")
		tunnels, err := d.Tunnels()
		if err != nil || len(tunnels) != 1 {
			return fmt.Errorf("tunnels = %v, %v", tunnels, err)
		}
		return echoThrough(tunnels[0].Public) // through the tunnel to the echo service
	}
	if err := Dev(t.Context(), doc.New(), f.opts, f.env); err != nil {
		t.Fatalf("Dev: %v (events %s)", err, f.events.kinds())
	}
	want := fmt.Sprintf("postgres://app:l0cal@127.0.0.1:%d/app", 0)
	got := during["STP_POSTGRES_DB_CONNECTION_STRING"]
	if !strings.HasPrefix(got, "postgres://app:l0cal@127.0.0.1:") || got == want || during["LOG_LEVEL"] != "debug" {
		t.Fatalf("during the session api has %v", during)
	}
	after, _ := f.sim.Env("api")
	if !maps.Equal(before, after) {
		t.Fatalf("after the session api has %v, want %v", after, before)
	}
	if f.sim.Updates("other") != 0 {
		t.Fatal("an unrelated function was written")
	}
	wantKinds := "Bound Found TunnelStarted Updating PatchProgress Ready Restoring RestoreProgress Restored Stopping Stopped CleanupComplete"
	if got := f.events.kinds(); got != wantKinds {
		t.Fatalf("events:\n %s\nwant\n %s", got, wantKinds)
	}
}

func TestDevCommandExitCodeEndsTheSession(t *testing.T) {
	f := newFixture(t)
	f.opts.Command = []string{"sh", "-c", `case "$STPTUNNEL_STATE_DIR" in "") exit 9;; esac; exit 7`}
	err := Dev(t.Context(), doc.New(), f.opts, f.env)
	var exit *ExitError
	if !errors.As(err, &exit) || exit.Code != 7 {
		t.Fatalf("Dev = %v, want the command's exit 7", err)
	}
	if env, _ := f.sim.Env("api"); env["STP_POSTGRES_DB_CONNECTION_STRING"] != deployed {
		t.Fatalf("not restored: %v", env)
	}
}

func TestDevInterruptWhileHolding(t *testing.T) {
	f := newFixture(t)
	interrupts := make(chan os.Signal, 1)
	f.opts.Interrupts = interrupts
	printed := make(chan struct{})
	f.opts.Output = func(d *doc.Document) error { close(printed); return nil }
	done := make(chan error, 1)
	go func() { done <- Dev(t.Context(), doc.New(), f.opts, f.env) }()
	select {
	case <-printed:
	case err := <-done:
		t.Fatalf("Dev ended before it was ready: %v", err)
	}
	if env, _ := f.sim.Env("api"); env["STP_POSTGRES_DB_CONNECTION_STRING"] == deployed {
		t.Fatal("ready but not patched")
	}
	interrupts <- syscall.SIGINT
	if err := <-done; err != nil {
		t.Fatalf("Dev after SIGINT = %v, want nil", err)
	}
	if env, _ := f.sim.Env("api"); env["STP_POSTGRES_DB_CONNECTION_STRING"] != deployed {
		t.Fatalf("not restored: %v", env)
	}
	if !strings.Contains(f.events.kinds(), "Waiting Signalled Restoring RestoreProgress Restored") {
		t.Fatalf("events: %s", f.events.kinds())
	}
}

func TestDevPatchingNothingIsNotReady(t *testing.T) {
	f := newFixture(t)
	// The local database is declared with TLS that verifies its hostname: a tunnel cannot carry it, so env patch
	// skips the only function (detect warned). The session must not say Ready.
	local, err := connstr.ParseLocal(fmt.Sprintf("postgresDb=postgres://app@127.0.0.1:%d/app?sslmode=verify-full", f.echo.Addr().(*net.TCPAddr).Port))
	if err != nil {
		t.Fatal(err)
	}
	locals := []Local{{Local: local, Flag: "--local postgresDb"}}
	f.opts.Detect.Locals, f.opts.Tunnel.Locals = locals, locals
	f.opts.During = func(context.Context, *doc.Document) error { return nil } // never hold, whatever happens
	err = Dev(t.Context(), doc.New(), f.opts, f.env)
	var reported *Reported
	if !errors.As(err, &reported) || !errors.Is(err, ErrNothingPatched) {
		t.Fatalf("Dev = %v, want ErrNothingPatched, reported (events %s)", err, f.events.kinds())
	}
	if kinds := f.events.kinds(); strings.Contains(kinds, "Ready") || !strings.Contains(kinds, "Failed") {
		t.Fatalf("a session that patched nothing: %s", kinds)
	}
	if env, _ := f.sim.Env("api"); env["STP_POSTGRES_DB_CONNECTION_STRING"] != deployed {
		t.Fatalf("written: %v", env)
	}
}

func TestDevLockKeepsASecondSessionOut(t *testing.T) {
	f := newFixture(t)
	state, err := OpenState(f.env.StateDir)
	if err != nil {
		t.Fatal(err)
	}
	defer state.Close()
	err = Dev(t.Context(), doc.New(), f.opts, f.env)
	if !errors.Is(err, errLocked) {
		t.Fatalf("Dev with the state dir locked = %v, want errLocked", err)
	}
	if f.sim.Calls("ListFunctions") != 0 {
		t.Fatal("a locked-out session called AWS")
	}
}

func TestStepsPipeline(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	d := doc.New()
	if err := Detect(ctx, d, f.opts.Detect, f.env); err != nil {
		t.Fatal(err)
	}
	specs, err := TunnelSpecs(d, TunnelOptions{Servers: f.opts.Tunnel.Servers})
	if err != nil {
		t.Fatal(err)
	}
	s, err := OpenTunnels(ctx, d, specs, f.opts.Tunnel, f.env)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := Patch(ctx, d, f.opts.Patch, f.env); err != nil {
		t.Fatal(err)
	}
	patches, _ := d.Patches()
	if len(patches) != 1 || patches[0].State != doc.PatchApplied || patches[0].Changes[0].Before != deployed {
		t.Fatalf("patches = %+v", patches)
	}
	if err := Restore(ctx, d, RestoreOptions{}, f.env); err != nil {
		t.Fatal(err)
	}
	if env, _ := f.sim.Env("api"); env["STP_POSTGRES_DB_CONNECTION_STRING"] != deployed {
		t.Fatalf("not restored: %v", env)
	}
	restores, _ := d.Restores()
	if len(restores) != 1 || restores[0].State != doc.RestoreRestored {
		t.Fatalf("restores = %+v", restores)
	}
}

// TestDevReportsActivity: while the session holds, what each tunnel carried is reported, with exact byte counts.
func TestDevReportsActivity(t *testing.T) {
	f := newFixture(t)
	f.opts.During = func(ctx context.Context, d *doc.Document) error {
		tunnels, _ := d.Tunnels()
		c, err := net.DialTimeout("tcp", tunnels[0].Public, 5*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		c.Write([]byte("hello"))
		buf := make([]byte, 5)
		if _, err := io.ReadFull(c, buf); err != nil {
			return err
		}
		// Wait until a report shows the connection: the session reports once a second.
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if a := f.events.lastActivity(); a != nil && a.Total == 1 && a.BytesIn == 5 && a.BytesOut == 5 && a.Open == 1 {
				return nil
			}
		}
		return fmt.Errorf("no activity report of the connection: last %+v", f.events.lastActivity())
	}
	if err := Dev(t.Context(), doc.New(), f.opts, f.env); err != nil {
		t.Fatalf("Dev: %v (events %s)", err, f.events.kinds())
	}
}

// lastActivity is the first tunnel's activity in the latest TunnelActivity event.
func (r *recorder) lastActivity() *doc.Activity {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.events) - 1; i >= 0; i-- {
		if e, ok := r.events[i].(TunnelActivity); ok && len(e.Tunnels) > 0 {
			return e.Tunnels[0].Activity
		}
	}
	return nil
}
