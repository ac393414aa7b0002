package cli

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stptunnel/stptunnel/pkg/awssim"
	"github.com/stptunnel/stptunnel/pkg/bore"
	"github.com/stptunnel/stptunnel/pkg/bore/boretest"
)

// devWatchdog is the native client's heartbeat watchdog (bore.ClientConfig.HeartbeatTimeout default).
const devWatchdog = 5 * time.Second

// TestDevSurvivesTunnelFaults holds one `stptunnel dev` session through three tunnel faults and checks, through
// the emulator, that the function's environment always names a public address that answers:
//   - the local database restarts on its port: new connections through the tunnel work again at once;
//   - the control link stops silently (a proxy between client and server drops every byte, no FIN): the client
//     notices within the watchdog time, reconnects, and, since the old public port is still held by the server,
//     comes back on a new one: dev re-patches the function, whose env follows the new port;
//   - the bore server restarts on its control port: the client reconnects and the function's env names the
//     tunnel's address again.
//
// Then SIGTERM restores the function byte for byte.
func TestDevSurvivesTunnelFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the watchdog: not in -short")
	}
	sim, err := awssim.New(awssim.Options{Region: "eu-west-1"})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	boreSrv := boretest.Start(t, bore.ServerConfig{})
	controlPort := boreSrv.Addr().Port
	proxy := startHoldProxy(t, boreSrv.Addr().String())
	dbPort, stopDB := startTestDatabase(t, 0)
	seed := map[string]string{"STP_POSTGRES_DB_CONNECTION_STRING": fmt.Sprintf("postgres://app:pw@localhost:%d/app", dbPort), "KEEP": "as is"}
	sim.PutFunction(awssim.Function{Name: "api", Env: seed})

	dev := stptunnelCmd(t, sim, "", "dev", "--local", fmt.Sprintf("postgresDb=postgres://app:pw@localhost:%d/app", dbPort),
		"--to", proxy.addr(), "--state-dir", t.TempDir())
	stdout, stderr := newWatchBuffer(), newWatchBuffer()
	dev.Stdout, dev.Stderr = stdout, stderr
	if err := dev.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { dev.Wait(); close(exited) }()
	defer func() { dev.Process.Kill(); <-exited }()
	if !stdout.waitFor(`"patches"`, exited) {
		t.Fatalf("dev never got ready:\n%s", stderr.String())
	}

	// publicOf is the public address the function's env names now.
	publicOf := func() string {
		env, _ := sim.Env("api")
		v := env["STP_POSTGRES_DB_CONNECTION_STRING"]
		_, rest, _ := strings.Cut(v, "@")
		addr, _, _ := strings.Cut(rest, "/")
		return addr
	}
	// followed waits until the function's env names an address other than old that answers.
	followed := func(what, old string) string {
		t.Helper()
		deadline := time.Now().Add(reliabilityWait)
		for {
			addr := publicOf()
			if addr != old && !strings.HasPrefix(addr, "localhost:") && dialEcho(addr) == nil {
				return addr
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the function's env names %s, which does not answer:\n%s", what, addr, stderr.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	first := followed("start", "")

	// The local database restarts on the same port.
	stopDB()
	startTestDatabase(t, dbPort)
	if err := dialEcho(first); err != nil {
		t.Fatalf("after the database restarted: %v\n%s", err, stderr.String())
	}

	// The control link stops silently.
	downs := strings.Count(stderr.String(), "is down")
	frozen := time.Now()
	proxy.freeze()
	if !waitCount(stderr, "is down", downs+1, exited) {
		t.Fatalf("the silent link was never noticed:\n%s", stderr.String())
	}
	noticed := time.Since(frozen)
	if noticed > devWatchdog+10*time.Second {
		t.Errorf("the silent link was noticed after %v; the watchdog is %v", noticed, devWatchdog)
	}
	if !stderr.waitFor("now point at", exited) {
		t.Fatalf("dev did not re-patch after the tunnel moved:\n%s", stderr.String())
	}
	second := followed("after the silent link", first)
	t.Logf("silent link noticed after %v; the function followed %s → %s", noticed.Round(100*time.Millisecond), first, second)

	// The bore server restarts on its control port.
	downs = strings.Count(stderr.String(), "is down")
	boreSrv.Close()
	if !waitCount(stderr, "is down", downs+1, exited) {
		t.Fatalf("the server's stop was never noticed:\n%s", stderr.String())
	}
	boretest.Start(t, bore.ServerConfig{ControlPort: controlPort})
	third := followed("after the server restarted", "")
	t.Logf("after the server restart the function names %s", third)

	dev.Process.Signal(syscall.SIGTERM)
	<-exited
	if env, _ := sim.Env("api"); string(awssim.CompactJSON(env)) != string(awssim.CompactJSON(seed)) {
		t.Fatalf("after the session: %s\nwant %s\n%s", awssim.CompactJSON(env), awssim.CompactJSON(seed), stderr.String())
	}
}

// waitCount waits until buf holds at least n occurrences of s.
func waitCount(buf *watchBuffer, s string, n int, exited <-chan struct{}) bool {
	deadline := time.Now().Add(reliabilityWait)
	for strings.Count(buf.String(), s) < n {
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-exited:
			return strings.Count(buf.String(), s) >= n
		case <-time.After(20 * time.Millisecond):
		}
	}
	return true
}
