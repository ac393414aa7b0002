package cli

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stptunnel/stptunnel/pkg/awssim"
)

// TestEnvPatchKilledAtEachStepIsRestored kills `stptunnel env patch` (SIGKILL) while the emulator holds one of its
// requests, at each step of a patch, and checks that `stptunnel env restore` with empty stdin then leaves the
// function byte-identical to what it was. No hook in the product: the emulator's injected latency holds the
// process at a known request, and its per-request log line says when it got there.
func TestEnvPatchKilledAtEachStepIsRestored(t *testing.T) {
	steps := []struct {
		name      string
		holdOp    string // the request held when the process is killed
		holdNth   int
		journal   string // what the journal says at that instant: "" (no file), "pending" or "applied"
		afterEnv  string // the bound variable at that instant
		holdAfter string // hold holdOp only once this operation has been called (the poll after the update)
	}{
		{name: "before the journal", holdOp: "GetFunction", holdNth: 1, afterEnv: "localhost:5432"},
		{name: "between journal and update", holdOp: "UpdateFunctionConfiguration", holdNth: 1, journal: "pending", afterEnv: "localhost:5432"},
		// The applied marks are written together at the end of the patch: while the update goes live the journal
		// still says pending, which restore finishes the same way.
		{name: "after the update", holdOp: "GetFunction", holdNth: 2, holdAfter: "UpdateFunctionConfiguration",
			journal: "pending", afterEnv: "127.0.0.1:40001"},
	}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			held := make(chan struct{})
			var once sync.Once
			var armed atomic.Bool // the hold is for the patch only, not for the restore that follows
			armed.Store(true)
			var sim *awssim.Server
			log := slog.New(&callWatcher{onCall: func(op string, n int) {
				if step.holdAfter != "" && op == step.holdAfter && armed.Load() {
					// Set before this update is even processed, so the poll that follows its answer is held.
					sim.SetFault(step.holdOp, awssim.Fault{Latency: time.Hour})
				}
				if op == step.holdOp && n == step.holdNth {
					once.Do(func() { close(held) })
				}
			}})
			var err error
			sim, err = awssim.New(awssim.Options{Region: "eu-west-1", Logger: log})
			if err != nil {
				t.Fatal(err)
			}
			defer sim.Close()
			sim.PutFunction(awssim.Function{Name: "api", Env: crashEnv})
			if step.holdAfter == "" {
				sim.SetFault(step.holdOp, awssim.Fault{Latency: time.Hour})
			}
			state := t.TempDir()

			patch := stptunnelCmd(t, sim, crashDoc, "env", "patch", "--state-dir", state)
			var stderr bytes.Buffer
			patch.Stderr = &stderr
			if err := patch.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- patch.Wait() }()
			select {
			case <-held:
			case err := <-exited:
				t.Fatalf("env patch ended (%v) before reaching the step:\n%s", err, stderr.String())
			case <-time.After(60 * time.Second):
				t.Fatal("env patch never reached the step")
			}
			if err := patch.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			<-exited
			armed.Store(false)
			sim.SetFault(step.holdOp, awssim.Fault{}) // later requests go through; the held one stays held

			journal, _ := os.ReadFile(filepath.Join(state, "journal.json"))
			switch {
			case step.journal == "" && len(journal) != 0:
				t.Fatalf("journal written before the read finished:\n%s", journal)
			case step.journal != "" && !strings.Contains(string(journal), `"state": "`+step.journal+`"`):
				t.Fatalf("journal at the kill, want %s:\n%s", step.journal, journal)
			}
			if env, _ := sim.Env("api"); !strings.Contains(env["DB"], step.afterEnv) {
				t.Fatalf("at the kill the function holds %q, want it to contain %s", env["DB"], step.afterEnv)
			}

			restore := stptunnelCmd(t, sim, "", "env", "restore", "--state-dir", state)
			out, err := restore.CombinedOutput()
			if err != nil {
				t.Fatalf("env restore: %v\n%s", err, out)
			}
			if env, _ := sim.Env("api"); string(awssim.CompactJSON(env)) != string(awssim.CompactJSON(crashEnv)) {
				t.Fatalf("after env restore: %s\nwant %s", awssim.CompactJSON(env), awssim.CompactJSON(crashEnv))
			}
			if _, err := os.Stat(filepath.Join(state, "journal.json")); !os.IsNotExist(err) {
				t.Fatalf("journal left after the restore (%v):\n%s", err, out)
			}
		})
	}
}

var crashEnv = map[string]string{"DB": "postgres://app:s3cret@localhost:5432/app", "OTHER": "kept <as> is"}

const crashDoc = `{"stptunnel": "v1", "region": "eu-west-1",
 "resources": [{"name": "postgresDb", "type": "postgres", "address": "localhost:5432"}],
 "functions": [{"name": "api", "bindings": [{"env": "DB", "resource": "postgresDb", "via": "map"}]}],
 "tunnels": [{"resource": "postgresDb", "local": "localhost:5432", "public": "127.0.0.1:40001"}]}`

// stptunnelCmd runs this test binary as stptunnel (TestMain dispatches on the program name) against sim.
func stptunnelCmd(t *testing.T, sim *awssim.Server, stdin string, args ...string) *exec.Cmd {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Args[0] = "stptunnel"
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Env = append(os.Environ(),
		"AWS_ENDPOINT_URL="+sim.URL(), "AWS_REGION=eu-west-1", "AWS_PROFILE=", "AWS_SESSION_TOKEN=",
		"AWS_ACCESS_KEY_ID=AKIDAWSSIM", "AWS_SECRET_ACCESS_KEY=awssim", "AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE="+filepath.Join(t.TempDir(), "absent"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(t.TempDir(), "absent"),
		"NO_COLOR=1", "GITHUB_ACTIONS=")
	return cmd
}

// callWatcher is the emulator's logger: it sees one "awssim: call" record per request, before the request is
// processed, and reports the operation and how many calls it has had.
type callWatcher struct {
	mu     sync.Mutex
	calls  map[string]int
	onCall func(op string, n int)
}

func (w *callWatcher) Enabled(context.Context, slog.Level) bool { return true }
func (w *callWatcher) WithAttrs([]slog.Attr) slog.Handler       { return w }
func (w *callWatcher) WithGroup(string) slog.Handler            { return w }

func (w *callWatcher) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "awssim: call" {
		return nil
	}
	var op string
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "op" {
			op = a.Value.String()
		}
		return true
	})
	w.mu.Lock()
	if w.calls == nil {
		w.calls = map[string]int{}
	}
	w.calls[op]++
	n := w.calls[op]
	w.mu.Unlock()
	w.onCall(op, n)
	return nil
}
