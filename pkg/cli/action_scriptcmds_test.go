package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// Script commands that play the GitHub Actions runner for testdata/script/action_*.txtar:
//
//	ghrunner                 GITHUB_ACTIONS=true, RUNNER_TEMP, GITHUB_OUTPUT, GITHUB_STATE and GITHUB_STEP_SUMMARY
//	                         as files under $WORK/runner, and ACTION, the directory of the action's JavaScript
//	ghinput NAME VALUE       set an input as the runner does: INPUT_<NAME upper-cased> (stptunnel-path arrives
//	ghinput -file NAME FILE  as INPUT_STPTUNNEL-PATH, a name testscript's env cannot write); -file for multiline
//	ghaction main|post       run node $ACTION/main.js or post.js as the runner does (for post: STATE_<name> from
//	                         what main saved in $GITHUB_STATE); stdout and stderr are kept, ! expects a failure
//	ghfile [-export VAR] output|state NAME
//	                         print the value NAME has in $GITHUB_OUTPUT or $GITHUB_STATE, for stdout/cmp, or
//	                         export it as VAR
func init() {
	registerScriptCmds(map[string]scriptCmd{
		"ghrunner": cmdGHRunner,
		"ghaction": cmdGHAction,
		"ghfile":   cmdGHFile,
		"ghinput":  cmdGHInput,
	})
}

func cmdGHRunner(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: ghrunner")
	}
	action, err := filepath.Abs("../../action")
	ts.Check(err)
	runner := ts.MkAbs("runner")
	ts.Check(os.MkdirAll(filepath.Join(runner, "temp"), 0o755))
	for _, f := range []string{"output", "state", "summary.md"} {
		ts.Check(os.WriteFile(filepath.Join(runner, f), nil, 0o644))
	}
	ts.Setenv("ACTION", action)
	ts.Setenv("GITHUB_ACTIONS", "true")
	ts.Setenv("RUNNER_TEMP", filepath.Join(runner, "temp"))
	ts.Setenv("GITHUB_OUTPUT", filepath.Join(runner, "output"))
	ts.Setenv("GITHUB_STATE", filepath.Join(runner, "state"))
	ts.Setenv("GITHUB_STEP_SUMMARY", filepath.Join(runner, "summary.md"))
}

func cmdGHInput(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 || (args[0] == "-file" && len(args) != 3) || (args[0] != "-file" && len(args) != 2) {
		ts.Fatalf("usage: ghinput NAME VALUE | ghinput -file NAME FILE")
	}
	name, value := args[0], args[1]
	if name == "-file" {
		name, value = args[1], ts.ReadFile(args[2])
	}
	ts.Setenv("INPUT_"+strings.ToUpper(strings.ReplaceAll(name, " ", "_")), value)
}

func cmdGHAction(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 || (args[0] != "main" && args[0] != "post") {
		ts.Fatalf("usage: ghaction main|post")
	}
	if args[0] == "post" {
		state, err := parseFileCommands(ts.ReadFile(ts.Getenv("GITHUB_STATE")))
		ts.Check(err)
		for name, value := range state {
			ts.Setenv("STATE_"+name, value)
		}
	}
	err := ts.Exec("node", filepath.Join(ts.Getenv("ACTION"), args[0]+".js"))
	if err != nil {
		ts.Logf("[%v]", err)
		if !neg {
			ts.Fatalf("unexpected failure of the %s step", args[0])
		}
	} else if neg {
		ts.Fatalf("the %s step succeeded unexpectedly", args[0])
	}
}

func cmdGHFile(ts *testscript.TestScript, neg bool, args []string) {
	export := ""
	if len(args) == 4 && args[0] == "-export" {
		export, args = args[1], args[2:]
	}
	if neg || len(args) != 2 || (args[0] != "output" && args[0] != "state") {
		ts.Fatalf("usage: ghfile [-export VAR] output|state NAME")
	}
	file := map[string]string{"output": "GITHUB_OUTPUT", "state": "GITHUB_STATE"}[args[0]]
	values, err := parseFileCommands(ts.ReadFile(ts.Getenv(file)))
	ts.Check(err)
	value, ok := values[args[1]]
	if !ok {
		names := make([]string, 0, len(values))
		for n := range values {
			names = append(names, n)
		}
		sort.Strings(names)
		ts.Fatalf("$%s has no %s (it has %q)", file, args[1], names)
	}
	if export != "" {
		ts.Setenv(export, value)
		return
	}
	fmt.Fprintln(ts.Stdout(), value)
}

// parseFileCommands reads $GITHUB_OUTPUT or $GITHUB_STATE as the runner does: name=value lines and
// name<<DELIMITER heredocs. A name given twice keeps its last value.
func parseFileCommands(text string) (map[string]string, error) {
	values := map[string]string{}
	lines := strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if line == "" {
			continue
		}
		eq, hd := strings.Index(line, "="), strings.Index(line, "<<")
		if hd > 0 && (eq < 0 || hd < eq) {
			name, delim := line[:hd], line[hd+2:]
			var body []string
			for i++; ; i++ {
				if i >= len(lines) {
					return nil, fmt.Errorf("%s: no closing %s", name, delim)
				}
				if lines[i] == delim {
					break
				}
				body = append(body, lines[i])
			}
			values[name] = strings.Join(body, "\n")
			continue
		}
		if eq <= 0 {
			return nil, fmt.Errorf("line %d: %q is neither name=value nor name<<DELIMITER", i+1, line)
		}
		values[line[:eq]] = line[eq+1:]
	}
	return values, nil
}

func mustParseFileCommands(t *testing.T, text string) map[string]string {
	t.Helper()
	values, err := parseFileCommands(text)
	if err != nil {
		t.Fatalf("parsing %q: %v", text, err)
	}
	return values
}

func TestParseFileCommands(t *testing.T) {
	got := mustParseFileCommands(t, "a=1\ndoc<<EOF\n{\n  \"x\": \"y=z\"\n}\nEOF\nempty<<D\n\nD\na=2\n")
	want := map[string]string{"a": "2", "doc": "{\n  \"x\": \"y=z\"\n}", "empty": ""}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %q, want %q", got, want)
	}
	for _, bad := range []string{"doc<<EOF\nunterminated\n", "no separator\n"} {
		if _, err := parseFileCommands(bad); err == nil {
			t.Errorf("parseFileCommands(%q) accepted it", bad)
		}
	}
}
