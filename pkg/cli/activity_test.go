package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stptunnel/stptunnel/pkg/tunnel"
)

// echoThrough sends payload through addr and reads it back.
func echoThrough(t *testing.T, addr string, payload []byte) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	go c.Write(payload)
	if _, err := io.ReadFull(c, make([]byte, len(payload))); err != nil {
		t.Fatal(err)
	}
}

// TestDevSaysWhatTheTunnelCarries (off a terminal): a line when the tunnel carries its first connection, and one
// when the local service refuses a tunnelled connection (the database is down).
func TestDevSaysWhatTheTunnelCarries(t *testing.T) {
	w := newWorld(t)
	dev := stptunnelCmd(t, w.sim, "", "dev", "--local", w.local("pw"), "--to", w.bore.Addr().String(), "--state-dir", t.TempDir())
	stdout, stderr := newWatchBuffer(), newWatchBuffer()
	dev.Stdout, dev.Stderr = stdout, stderr
	exited := start(t, dev)
	if !stdout.waitFor(`"patches"`, exited) {
		t.Fatalf("dev never got ready:\n%s", stderr.String())
	}
	var document struct{ Tunnels []struct{ Public string } }
	json.Unmarshal([]byte(stdout.String()), &document)
	public := document.Tunnels[0].Public

	echoThrough(t, public, []byte("SELECT 1"))
	if !stderr.waitFor("✓ Tunnel postgresDb carried its first connection\n", exited) {
		t.Fatalf("no line for the first connection:\n%s", stderr.String())
	}
	w.stopDB()
	c, err := net.Dial("tcp", public)
	if err == nil {
		c.Read(make([]byte, 1)) // the server closes it once the client could not reach the local service
		c.Close()
	}
	if !stderr.waitFor("! Tunnel postgresDb: the local service at 127.0.0.1:"+fmt.Sprint(w.dbPort)+" refused 1 connection: ", exited) {
		t.Fatalf("no line for the refused local connection:\n%s", stderr.String())
	}
	dev.Process.Signal(syscall.SIGINT)
	<-exited
	if strings.Count(stderr.String(), "carried its first connection") != 1 {
		t.Fatalf("the first connection said more than once:\n%s", stderr.String())
	}
}

// TestTunnelStatusAndCloseReportActivity: a detached holder writes what its tunnels carry to its record; `tunnel
// status` shows the counters (exact bytes) in its table and document; `tunnel close` says what they carried and,
// under GitHub Actions, adds it to the job summary.
func TestTunnelStatusAndCloseReportActivity(t *testing.T) {
	w := newWorld(t)
	state, work := t.TempDir(), t.TempDir()
	summary := filepath.Join(work, "summary.md")
	run := func(args ...string) (string, string) {
		t.Helper()
		cmd := stptunnelCmd(t, w.sim, "", args...)
		cmd.Path = stptunnelBinary(t)
		cmd.Env = append(cmd.Env, "GITHUB_ACTIONS=true", "GITHUB_STEP_SUMMARY="+summary, "GITHUB_OUTPUT="+filepath.Join(work, "out"))
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, stderr.String())
		}
		return stdout.String(), stderr.String()
	}
	out, _ := run("tunnel", "open", "--detach", "--local", fmt.Sprintf("db=127.0.0.1:%d", w.dbPort), "--to", w.bore.Addr().String(), "--state-dir", state)
	var document struct{ Tunnels []struct{ Public string } }
	json.Unmarshal([]byte(out), &document)
	public := document.Tunnels[0].Public
	echoThrough(t, public, []byte(strings.Repeat("x", 1000)))
	echoThrough(t, public, []byte(strings.Repeat("y", 234)))

	// The holder records within a second or so. status reads the record before its own check, which opens one
	// connection through each tunnel (and so counts in the next reading).
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		st, err := tunnel.ReadState(state)
		if err == nil && st.Tunnels[0].Activity != nil && st.Tunnels[0].Activity.Total == 2 && st.Tunnels[0].Activity.Open == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the holder never recorded the two connections: %+v, %v", st, err)
		}
	}
	status, table := run("tunnel", "status", "--state-dir", state)
	if !regexp.MustCompile(`(?m)^ +0 open · 2 total · ↓ 1\.2 kB ↑ 1\.2 kB · last (\d+ s ago|just now)$`).MatchString(table) {
		t.Fatalf("tunnel status does not show the activity:\n%s", table)
	}
	for _, want := range []string{`"total": 2`, `"bytesIn": 1234`, `"bytesOut": 1234`, `"localErrors": 0`} {
		if !strings.Contains(status, want) {
			t.Errorf("the status document lacks %s:\n%s", want, status)
		}
	}
	_, closing := run("tunnel", "close", "--state-dir", state)
	if !regexp.MustCompile(`i db \(127\.0\.0\.1:\d+\) carried: 0 open · [23] total · ↓ 1\.2 kB ↑ 1\.2 kB`).MatchString(closing) {
		t.Fatalf("tunnel close does not say what the tunnel carried:\n%s", closing)
	}
	md, _ := os.ReadFile(summary)
	if !regexp.MustCompile(`### stptunnel: what the tunnels carried\n\n\| Resource \| Public \| Connections \| To the local service \| From it \| Refused locally \|\n\| --- \|.*\n\| db \| ` +
		"`127\\.0\\.0\\.1:\\d+`" + ` \| [23] \| 1\.2 kB \| 1\.2 kB \| 0 \|`).Match(md) {
		t.Fatalf("the job summary lacks the activity table:\n%s", md)
	}
}
