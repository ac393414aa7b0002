package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stptunnel/stptunnel/pkg/awssim"
)

// TestBadInputCorpus runs the commands that write (env patch, env restore, dev, tunnel open) on bad input:
// malformed, truncated and huge documents, wrong types, duplicate names, invalid ports and URLs, unknown engines
// and types, missing credentials or region, names that do not exist. Each must exit 2 (1 when AWS itself refuses),
// print a message naming the problem, and write nothing: the emulator's update counter stays at zero and no
// function changes.
func TestBadInputCorpus(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary many times: not in -short")
	}
	sim, err := awssim.New(awssim.Options{Region: "eu-west-1"})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	seedEnv := map[string]string{"STP_POSTGRES_DB_CONNECTION_STRING": "postgres://app:pw@localhost:5432/app"}
	sim.PutFunction(awssim.Function{Name: "api", Env: seedEnv})
	dbPort, _ := startTestDatabase(t, 0)
	local := fmt.Sprintf("postgresDb=postgres://app:pw@localhost:%d/app", dbPort)

	const fn = `{"name": "api", "bindings": [{"env": "STP_POSTGRES_DB_CONNECTION_STRING", "resource": "postgresDb", "via": "convention"}]}`
	const res = `{"name": "postgresDb", "type": "postgres", "address": "localhost:5432"}`
	const tun = `{"resource": "postgresDb", "local": "localhost:5432", "public": "127.0.0.1:40001"}`
	good := `{"stptunnel": "v1", "region": "eu-west-1", "resources": [` + res + `], "functions": [` + fn + `], "tunnels": [` + tun + `]}`
	huge := `{"stptunnel": "v1", "region": "eu-west-1", "padding": "` + strings.Repeat("x", 64<<20) + `", "resources": [` + res + `]`
	journal := filepath.Join(t.TempDir(), "journal.json")
	if err := os.WriteFile(journal, []byte(`{"stptunnel": "v1", "patches": [{"function": "api", "state": "applied", "changes": "nope"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name  string
		stdin string
		args  []string
		env   []string // extra environment
		code  int
		want  string // regexp the stderr must match
	}{
		{"malformed JSON", `{"stptunnel": "v1", "functions": [}`, []string{"env", "patch"}, nil, 2, `stdin`},
		{"truncated JSON", good[:len(good)/2], []string{"env", "patch"}, nil, 2, `stdin`},
		{"not an object", `["api"]`, []string{"env", "patch"}, nil, 2, `object`},
		{"wrong type functions", `{"stptunnel": "v1", "functions": "api", "tunnels": [` + tun + `]}`, []string{"env", "patch"}, nil, 2, `functions`},
		{"wrong type bindings", `{"stptunnel": "v1", "functions": [{"name": "api", "bindings": {"env": 1}}], "tunnels": [` + tun + `]}`, []string{"env", "patch"}, nil, 2, `bindings`},
		{"wrong type port", `{"stptunnel": "v1", "region": "eu-west-1", "resources": [{"name": "postgresDb", "type": "postgres", "address": 5432}], "functions": [` + fn + `], "tunnels": [` + tun + `]}`, []string{"env", "patch"}, nil, 2, `address`},
		{"unknown version", `{"stptunnel": "v9", "functions": [` + fn + `]}`, []string{"env", "patch"}, nil, 2, `v9`},
		{"huge document", huge, []string{"env", "patch"}, nil, 2, `stdin`},
		{"duplicate resource names", `{"stptunnel": "v1", "region": "eu-west-1", "resources": [` + res + `,` + res + `], "functions": [` + fn + `], "tunnels": [` + tun + `]}`, []string{"env", "patch"}, nil, 2, `resources\[1\].*"postgresDb" is declared twice`},
		{"duplicate resource names (tunnel open)", `{"stptunnel": "v1", "resources": [` + res + `,` + res + `]}`, []string{"tunnel", "open", "--to", "127.0.0.1:1"}, nil, 2, `postgresDb`},
		{"duplicate tunnels", `{"stptunnel": "v1", "region": "eu-west-1", "resources": [` + res + `], "functions": [` + fn + `], "tunnels": [` + tun + `,` + strings.Replace(tun, "40001", "40002", 1) + `]}`, []string{"env", "patch"}, nil, 2, `tunnels\[1\].*postgresDb`},
		{"invalid tunnel address", `{"stptunnel": "v1", "region": "eu-west-1", "resources": [` + res + `], "functions": [` + fn + `], "tunnels": [{"resource": "postgresDb", "local": "localhost:5432", "public": "127.0.0.1:99999"}]}`, []string{"env", "patch"}, nil, 2, `99999`},
		{"invalid port (--local)", "", []string{"dev", "--local", "db=localhost:99999", "--to", "127.0.0.1:1"}, nil, 2, `99999`},
		{"port zero (--local)", "", []string{"tunnel", "open", "--local", "db=postgres://localhost:0/app", "--to", "127.0.0.1:1"}, nil, 2, `port`},
		{"invalid URL (--local)", "", []string{"dev", "--local", "db=postgres://[::1/app", "--to", "127.0.0.1:1"}, nil, 2, `db=postgres://\[::1/app`},
		{"unknown engine", "", []string{"dev", "--local", local, "--engine", "ssh", "--to", "127.0.0.1:1"}, nil, 2, `--engine "ssh"`},
		{"unknown type", `{"stptunnel": "v1", "resources": [{"name": "db", "type": "oracle", "url": "oracle://localhost:1521/x"}]}`, []string{"tunnel", "open", "--to", "127.0.0.1:1"}, nil, 2, `oracle`},
		{"bad concurrency", good, []string{"env", "patch", "--concurrency", "0"}, nil, 2, `--concurrency`},
		{"bad concurrency (dev)", "", []string{"dev", "--local", local, "--concurrency", "-1", "--to", "127.0.0.1:1"}, nil, 2, `--concurrency`},
		{"unknown flag", good, []string{"env", "patch", "--forse"}, nil, 2, `forse`},
		{"no region", `{"stptunnel": "v1", "resources": [` + res + `], "functions": [` + fn + `], "tunnels": [` + tun + `]}`, []string{"env", "patch"},
			[]string{"AWS_REGION=", "AWS_DEFAULT_REGION="}, 2, `region`},
		{"no credentials", good, []string{"env", "patch"}, []string{"AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY="}, 1, `no AWS credentials found \(none in the environment(.|\n)*set AWS_PROFILE`},
		// CONTRACT.md §3: a function that does not exist is skipped as not-found, named, and the command goes on; with
		// nothing patched at all, the step does not end as a success.
		{"function that does not exist", strings.Replace(good, `"name": "api"`, `"name": "ghost"`, 1), []string{"env", "patch"}, nil, 1, `Skipping ghost: .*does not exist(.|\n)*no function was patched`},
		{"stack that does not exist", "", []string{"dev", "--local", local, "--stack", "ghost-stack", "--to", "127.0.0.1:1"}, nil, 2, `ghost-stack`},
		{"bad journal", "", []string{"env", "restore"}, []string{"STPTUNNEL_STATE_DIR=" + filepath.Dir(journal)}, 1, `journal.json: patches.changes: expected an array, got [a-z]+ \(the file is JSON`},
		{"restore: malformed document", `{"patches": [{"function": "api", "state": "applied", "changes": [{"env": 1}]}]}`, []string{"env", "restore"}, nil, 2, `changes`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := sim.Calls("UpdateFunctionConfiguration")
			cmd := stptunnelCmd(t, sim, tc.stdin, tc.args...)
			if !hasEnv(tc.env, "STPTUNNEL_STATE_DIR") {
				cmd.Args = append(cmd.Args, "--state-dir", t.TempDir())
			}
			cmd.Env = append(cmd.Env, tc.env...)
			var stderr, stdout strings.Builder
			cmd.Stderr, cmd.Stdout = &stderr, &stdout
			err := cmd.Run()
			msg := stderr.String()
			if code := exitOf(err); code != tc.code {
				t.Errorf("%v exited %d, want %d:\n%s", tc.args, code, tc.code, clip(msg))
			}
			if !regexp.MustCompile(tc.want).MatchString(msg) {
				t.Errorf("stderr does not name the problem (want %q):\n%s", tc.want, clip(msg))
			}
			if strings.Contains(msg, "panic") || strings.Contains(msg, "goroutine ") {
				t.Errorf("stderr shows a crash:\n%s", clip(msg))
			}
			if n := sim.Calls("UpdateFunctionConfiguration") - before; n != 0 {
				t.Errorf("%d UpdateFunctionConfiguration calls on bad input", n)
			}
		})
	}
	if env, _ := sim.Env("api"); string(awssim.CompactJSON(env)) != string(awssim.CompactJSON(seedEnv)) {
		t.Fatalf("api changed: %s", awssim.CompactJSON(env))
	}
}

func hasEnv(env []string, key string) bool {
	for _, kv := range env {
		if strings.HasPrefix(kv, key+"=") {
			return true
		}
	}
	return false
}

// clip keeps a message short enough to read in a failure.
func clip(s string) string {
	if len(s) > 2000 {
		return s[:2000] + "…"
	}
	return s
}
