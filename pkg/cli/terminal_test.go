//go:build linux

package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stptunnel/stptunnel/internal/ptytest"
	"github.com/stptunnel/stptunnel/pkg/awssim"
)

// screen is what a pseudo-terminal showed: everything a program wrote to it, read until it closed.
type screen struct{ buf *watchBuffer }

func newScreen(t *testing.T) (*screen, *os.File) {
	t.Helper()
	controller, terminal, err := ptytest.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	s := &screen{buf: newWatchBuffer()}
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := controller.Read(b)
			s.buf.Write(b[:n])
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { terminal.Close(); controller.Close() })
	return s, terminal
}

// TestDevKeepsTheDocumentOffTheScreen: `dev` without a command, on a terminal, writes its document (connection
// strings, passwords) to STATE_DIR/session.json, mode 0600, and prints only the path.
func TestDevKeepsTheDocumentOffTheScreen(t *testing.T) {
	w := newWorld(t)
	const password = "Sup3rS3cretLocal"
	state := t.TempDir()
	scr, terminal := newScreen(t)
	dev := stptunnelCmd(t, w.sim, "", "dev", "--local", w.local(password), "--to", w.bore.Addr().String(), "--state-dir", state)
	stderr := newWatchBuffer()
	dev.Stdout, dev.Stderr = terminal, stderr
	exited := start(t, dev)
	path := filepath.Join(state, "session.json")
	if !stderr.waitFor("is in "+path, exited) {
		t.Fatalf("dev did not say where the document is:\n%s", stderr.String())
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("session.json: %v, mode %v; want 0600", err, st)
	}
	b, _ := os.ReadFile(path)
	if !strings.Contains(string(b), `"patches"`) || !strings.Contains(string(b), password) {
		t.Fatalf("session.json does not hold the session's document:\n%s", b)
	}
	dev.Process.Signal(syscall.SIGINT)
	<-exited
	if strings.Contains(scr.buf.String(), password) || strings.Contains(scr.buf.String(), `"patches"`) {
		t.Fatalf("the document reached the screen:\n%s", scr.buf.String())
	}
	if env, _ := w.sim.Env("api"); !strings.Contains(env["STP_POSTGRES_DB_CONNECTION_STRING"], "rds.amazonaws.com") {
		t.Fatalf("not restored: %v", env)
	}
}

// TestLiveStatusLineWhileLambdaIsSlow: on a terminal a long wait for Lambda shows one live line below the messages,
// with what is pending and the time elapsed, redrawn in place and gone once the step is done.
func TestLiveStatusLineWhileLambdaIsSlow(t *testing.T) {
	sim, err := awssim.New(awssim.Options{Region: "eu-west-1"})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	sim.PutFunction(awssim.Function{Name: "api", Env: map[string]string{"STP_DB_HOST": "db.cluster-x.eu-west-1.rds.amazonaws.com", "STP_DB_PORT": "5432"}})
	sim.SetFault("UpdateFunctionConfiguration", awssim.Fault{Latency: 1500 * time.Millisecond})
	scr, terminal := newScreen(t)
	document := `{"stptunnel": "v1", "region": "eu-west-1", "resources": [{"name": "db", "type": "tcp", "address": "localhost:5432"}],
 "functions": [{"name": "api", "bindings": [{"env": "STP_DB_HOST", "resource": "db", "via": "convention"}]}],
 "tunnels": [{"resource": "db", "local": "localhost:5432", "public": "127.0.0.1:40001", "server": "127.0.0.1", "engine": "native"}]}`
	patch := stptunnelCmd(t, sim, document, "env", "patch", "--state-dir", t.TempDir())
	patch.Env = append(patch.Env, "STPTUNNEL_PROGRESS_EVERY=200ms")
	patch.Stderr = terminal
	if out, err := patch.Output(); err != nil {
		t.Fatalf("env patch: %v\n%s", err, out)
	}
	timeout := make(chan struct{})
	time.AfterFunc(10*time.Second, func() { close(timeout) })
	if !scr.buf.waitFor("✓ Updating Lambda env vars: api\n", timeout) {
		t.Fatalf("the screen never showed the function updated:\n%q", scr.buf.String())
	}
	screen := scr.buf.String()
	status := regexp.MustCompile(`… Updating Lambda env vars: 0 of 1 done, waiting for api \(\d+s\)\n`)
	if len(status.FindAllString(screen, -1)) < 2 {
		t.Fatalf("no live status line redrawn while Lambda was slow:\n%q", screen)
	}
	if !strings.Contains(screen, "\x1b[1A\r\x1b[J✓ Updating Lambda env vars: api\n") {
		t.Fatalf("the status line was not replaced by the message:\n%q", screen)
	}
	if strings.HasSuffix(strings.TrimRight(screen, "\n"), ")") {
		t.Fatalf("the status line was left on the screen:\n%q", screen)
	}
}

// TestDevShowsTunnelActivityLive: on a terminal, dev keeps one line per tunnel below the messages with what it
// carries, redrawn at most once a second.
func TestDevShowsTunnelActivityLive(t *testing.T) {
	w := newWorld(t)
	scr, terminal := newScreen(t)
	state := t.TempDir()
	dev := stptunnelCmd(t, w.sim, "", "dev", "--local", w.local("pw"), "--to", w.bore.Addr().String(), "--state-dir", state,
		"--out", filepath.Join(state, "doc.json"))
	dev.Stderr = terminal
	exited := start(t, dev)
	if !scr.buf.waitFor("no connection yet", exited) {
		t.Fatalf("no tunnel line on the screen:\n%q", scr.buf.String())
	}
	line := regexp.MustCompile(`postgresDb  (127\.0\.0\.1:\d+)  no connection yet\n`).FindStringSubmatch(scr.buf.String())
	if line == nil {
		t.Fatalf("the tunnel line does not name the tunnel:\n%q", scr.buf.String())
	}
	echoThrough(t, line[1], []byte("SELECT 1"))
	if !scr.buf.waitFor("postgresDb  "+line[1]+"  0 open · 1 total · ↓ 8 B ↑ 8 B · last ", exited) {
		t.Fatalf("the tunnel line never showed the connection:\n%q", scr.buf.String())
	}
	if strings.Contains(scr.buf.String(), "carried its first connection") {
		t.Fatal("on a terminal the live line says it; no extra message")
	}
	dev.Process.Signal(syscall.SIGINT)
	<-exited
	if !strings.Contains(scr.buf.String(), "\x1b[1A\r\x1b[Ji Stopping tunnels...") {
		t.Fatalf("the tunnel line was not cleared before the tunnels stopped:\n%q", scr.buf.String())
	}
}
