package cli

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stptunnel/stptunnel/pkg/awssim"
	"github.com/stptunnel/stptunnel/pkg/bore"
	"github.com/stptunnel/stptunnel/pkg/bore/boretest"
	"github.com/stptunnel/stptunnel/pkg/session"
)

// The known secret values of TestSecretsNeverLeak.
const (
	leakPassword   = "Pa55w0rdXYZZY"
	leakBoreSecret = "bore-s3cret-QUUX"
	// leakTail is the rest of a password written unencoded in a --local URL (its '@' and '/' would end the
	// userinfo and the authority): everything up to the last '@' before the host is the password.
	leakTail = "W0RD/ta1l#x"
)

// TestSecretsNeverLeak runs every command, on its success and its failure paths, with a known password in a
// connection string and a known bore secret, and requires that neither appears in stderr, in error messages or in
// the log of a detached session (STATE_DIR/tunnels.log); that files holding them are 0600; and, under GitHub
// Actions, that every one is masked (::add-mask::) before anything prints it, stdout included (stdout and stderr
// share one pipe here, so the order is the order of writing).
func TestSecretsNeverLeak(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary many times: not in -short")
	}
	for _, actions := range []bool{false, true} {
		t.Run(map[bool]string{false: "terminal", true: "github-actions"}[actions], func(t *testing.T) {
			secretsRun(t, actions)
		})
	}
}

func secretsRun(t *testing.T, actions bool) {
	sim, err := awssim.New(awssim.Options{Region: "eu-west-1"})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	dbPort, _ := startTestDatabase(t, 0)
	url := fmt.Sprintf("postgres://app:%s@localhost:%d/app", leakPassword, dbPort)
	sim.PutFunction(awssim.Function{Name: "api", Env: map[string]string{"STP_POSTGRES_DB_CONNECTION_STRING": url}})
	boreSrv := boretest.Start(t, bore.ServerConfig{Secret: leakBoreSecret})
	to := boreSrv.Addr().String()
	// A port nothing listens on: a bore server that is down, a local service that is down.
	closed, stopClosed := startTestDatabase(t, 0)
	stopClosed()
	closedAddr := "127.0.0.1:" + strconv.Itoa(closed)
	state := t.TempDir()
	work := t.TempDir()
	local := "postgresDb=" + url
	binary := stptunnelBinary(t) // tunnel open --detach starts itself again as the holder

	var extraEnv []string
	if actions {
		extraEnv = []string{"GITHUB_ACTIONS=true", "GITHUB_OUTPUT=" + filepath.Join(work, "output"),
			"GITHUB_STEP_SUMMARY=" + filepath.Join(work, "summary")}
	}
	var jobLog strings.Builder // everything the job's steps printed so far
	var lastMessages string    // stderr of the last run
	run := func(name, stdin string, wantCode int, args ...string) string {
		t.Helper()
		cmd := stptunnelCmd(t, sim, stdin, args...)
		cmd.Path = binary
		cmd.Env = append(cmd.Env, append([]string{"STPTUNNEL_RETRY_DELAY=10ms", "BORE_SECRET=",
			"SERVER_SECRET=" + leakBoreSecret, "WRONG_SERVER_SECRET=" + leakBoreSecret + "-wrong"}, extraEnv...)...)
		var stdout, stderr strings.Builder
		if actions {
			cmd.Stdout = &stderr // one pipe for both (exec shares it): the order seen is the order written
		} else {
			cmd.Stdout = &stdout
		}
		cmd.Stderr = &stderr
		err := cmd.Run()
		messages, document := stderr.String(), stdout.String()
		if actions {
			// The runner keeps the masks of every earlier step of the job: a value an earlier command of the
			// pipeline masked is hidden already.
			checkMaskedFirst(t, name, jobLog.String()+messages)
			jobLog.WriteString(messages)
			messages, document = splitDocument(messages)
		}
		if code := exitOf(err); code != wantCode {
			t.Fatalf("%s: exit %d, want %d:\n%s", name, code, wantCode, messages)
		}
		checkNoLeak(t, name, "stderr", messages)
		lastMessages = messages
		return document
	}

	// A job whose first command is tunnel open with --local: nothing masked the password before.
	run("tunnel open --local, alone", "", 0, "tunnel", "open", "--detach", "--local", local, "--to", to, "--secret", leakBoreSecret, "--state-dir", state)
	run("tunnel close", "", 0, "tunnel", "close", "--state-dir", state)
	jobLog.Reset()

	// The pipeline of the GitHub Action and of a user's shell.
	detected := run("detect", "", 0, "detect", "--local", local)
	opened := run("tunnel open --detach", detected, 0, "tunnel", "open", "--detach", "--to", to, "--secret", leakBoreSecret, "--state-dir", state)
	run("tunnel status", "", 0, "tunnel", "status", "--state-dir", state)
	patched := run("env patch", opened, 0, "env", "patch", "--state-dir", state)
	run("env patch --dry-run", opened, 0, "env", "patch", "--dry-run", "--state-dir", t.TempDir())
	// The session marker holds the deployed value, password included: another session told api is in use, and
	// env status, never show it.
	run("env status", "", 0, "env", "status", "--function", "api")
	run("dev, function in use", "", 1, "dev", "--local", local, "--to", to, "--secret", leakBoreSecret, "--state-dir", t.TempDir(), "--", "true")
	run("env restore", patched, 0, "env", "restore", "--state-dir", state)
	// A restore from the marker on a machine that never saw the password: the marker's values are masked first.
	run("env patch, machine lost", opened, 0, "env", "patch", "--state-dir", t.TempDir())
	jobLog.Reset()
	run("env restore from the marker", "", 0, "env", "restore", "--function", "api", "--state-dir", t.TempDir())
	if actions && !strings.Contains(lastMessages, "::add-mask::"+leakPassword) {
		t.Errorf("env restore from the marker: the marker's password was not masked:\n%s", lastMessages)
	}
	run("tunnel close", "", 0, "tunnel", "close", "--state-dir", state)
	checkNoLeak(t, "tunnel open --detach", "tunnels.log", readFile(t, filepath.Join(state, session.HoldLog)))
	checkFileModes(t, state)

	// dev, whole session.
	devState := t.TempDir()
	run("dev", "", 0, "dev", "--local", local, "--to", to, "--secret", leakBoreSecret, "--state-dir", devState, "--", "true")
	checkFileModes(t, devState)

	// Failure paths: their error messages quote flags, specs, servers and causes.
	run("tunnel open, wrong secret", "", 1, "tunnel", "open", "--local", local, "--to", to, "--secret", leakBoreSecret+"-wrong")
	run("tunnel open, server down", "", 1, "tunnel", "open", "--local", local, "--to", closedAddr, "--secret", leakBoreSecret)
	run("tunnel open, local down", "", 1, "tunnel", "open", "--local", "postgresDb=postgres://app:"+leakPassword+"@localhost:"+strconv.Itoa(closed)+"/app",
		"--to", to, "--secret", leakBoreSecret)
	run("detect, duplicate --local", "", 2, "detect", "--local", local, "--local", "postgresDb=postgres://app:"+leakPassword+"@localhost:1/x")
	run("detect, bad --local", "", 2, "detect", "--local", "postgresDb=postgres://app:"+leakPassword+"@localhost:99999/app")
	run("dev, --local with an unencoded '@' and '/' in the password", "", 2, "dev", "--local",
		"postgresDb=postgres://app:"+leakPassword+"@"+leakTail+"@localhost:"+strconv.Itoa(dbPort)+"/app", "--to", to, "--state-dir", t.TempDir())
	run("env patch, bad document", `{"stptunnel": "v1", "resources": [{"name": "postgresDb", "type": "oracle", "url": "`+url+`"}], "tunnels": [{"resource": "postgresDb", "public": "x:1"}]}`,
		2, "env", "patch", "--state-dir", t.TempDir())
	run("dev, server down", "", 1, "dev", "--local", local, "--to", closedAddr, "--secret", leakBoreSecret, "--state-dir", t.TempDir())
	run("bore local, wrong secret", "", 1, "bore", "local", strconv.Itoa(dbPort), "--to", to, "--secret", leakBoreSecret+"-wrong")

	// Several servers, each with its own secret in a variable (HOST:PORT#VAR): the first is down, the second takes
	// the tunnel; then a refused secret on every server.
	failState := t.TempDir()
	run("tunnel open, failover with per-server secrets", "", 0, "tunnel", "open", "--detach", "--local", local,
		"--to", closedAddr+"#WRONG_SERVER_SECRET,"+to+"#SERVER_SECRET", "--state-dir", failState)
	run("tunnel status, failover", "", 0, "tunnel", "status", "--state-dir", failState)
	run("tunnel close, failover", "", 0, "tunnel", "close", "--state-dir", failState)
	checkNoLeak(t, "tunnel open, failover", "tunnels.log", readFile(t, filepath.Join(failState, session.HoldLog)))
	run("dev, every server refuses the secret", "", 1, "dev", "--local", local, "--to", to+"#WRONG_SERVER_SECRET",
		"--to", closedAddr, "--state-dir", t.TempDir())

	// bore server: runs until SIGTERM; its log lines must not carry the secret.
	srv := stptunnelCmd(t, sim, "", "bore", "server", "--bind-addr", "127.0.0.1", "--control-port", "0", "--secret", leakBoreSecret)
	srv.Env = append(srv.Env, extraEnv...)
	srvErr := newWatchBuffer()
	srv.Stderr = srvErr
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { srv.Wait(); close(exited) }()
	if !srvErr.waitFor("listening", exited) {
		t.Fatalf("bore server did not start:\n%s", srvErr.String())
	}
	srv.Process.Signal(syscall.SIGTERM)
	<-exited
	checkNoLeak(t, "bore server", "stderr", srvErr.String())
	if actions {
		checkMaskedFirst(t, "bore server", srvErr.String())
		// $GITHUB_OUTPUT carries the document (the next step's input) and is 0600; the summary is shown to
		// everyone with access to the run: it carries no secret.
		checkNoLeak(t, "GitHub Actions", "$GITHUB_STEP_SUMMARY", readFile(t, filepath.Join(work, "summary")))
		checkFileModes(t, work)
	}
}

// checkNoLeak fails if text holds a secret outside an ::add-mask:: command.
func checkNoLeak(t *testing.T, command, where, text string) {
	t.Helper()
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "::add-mask::") {
			continue
		}
		for _, secret := range []string{leakPassword, leakBoreSecret, leakTail} {
			if strings.Contains(line, secret) {
				t.Errorf("%s: %s leaks a secret: %q", command, where, line)
			}
		}
	}
}

// checkMaskedFirst fails if a secret is printed before an ::add-mask:: that hides it: its first appearance must be
// in a mask command (of itself, or of a longer value holding it).
func checkMaskedFirst(t *testing.T, command, out string) {
	t.Helper()
	for _, secret := range []string{leakPassword, leakBoreSecret, leakTail} {
		first := strings.Index(out, secret)
		if first < 0 {
			continue
		}
		lineStart := strings.LastIndexByte(out[:first], '\n') + 1
		if !strings.HasPrefix(out[lineStart:], "::add-mask::") {
			t.Errorf("%s: %q printed before it was masked:\n%s", command, secret, clip(out))
		}
	}
}

// checkFileModes fails if a file of the state dir that holds a secret is readable by others.
func checkFileModes(t *testing.T, dir string) {
	t.Helper()
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		b, _ := os.ReadFile(path)
		info, _ := d.Info()
		if (strings.Contains(string(b), leakPassword) || strings.Contains(string(b), leakBoreSecret)) && info.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s holds a secret with mode %v", path, info.Mode().Perm())
		}
		return nil
	})
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

// splitDocument separates the document (from a line "{" to a line "}") from the messages around it.
func splitDocument(out string) (messages, document string) {
	start := strings.Index(out, "\n{\n")
	if strings.HasPrefix(out, "{\n") {
		start = -1
	} else if start < 0 {
		return out, ""
	}
	end := strings.Index(out[start+1:], "\n}\n")
	if end < 0 {
		return out, ""
	}
	end += start + 1 + len("\n}\n")
	return out[:start+1] + out[end:], out[start+1 : end]
}
