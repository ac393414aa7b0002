package cli

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// TestCompletionAndManualCoverEveryCommand walks the command tree and requires every command a user can type in
// each completion script and, as a section in tree order, in the manual page; hidden commands in none of them.
func TestCompletionAndManualCoverEveryCommand(t *testing.T) {
	run := func(args ...string) string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		if code := Main(context.Background(), BuildInfo{Version: "v0.0.0-test"}, append([]string{"stptunnel"}, args...), nil, &stdout, &stderr); code != 0 {
			t.Fatalf("stptunnel %s: exit %d\n%s", strings.Join(args, " "), code, stderr.String())
		}
		return stdout.String()
	}
	scripts := map[string]string{"bash": run("completion", "bash"), "zsh": run("completion", "zsh"), "fish": run("completion", "fish")}
	man := run("man")

	// How each script names a command's entry in its tables.
	entry := map[string]func(path string) string{
		"bash": func(p string) string { return "\n    " + shQuote(p) + ") echo " },
		"zsh":  func(p string) string { return "\n    " + shQuote(p) + ") reply=(" },
		"fish": func(p string) string { return "\n        case " + fishQuote(p) + "\n" },
	}
	headings := regexp.MustCompile(`(?m)^\.S[HS] (.+)$`).FindAllStringSubmatch(man, -1)
	next := 0 // the manual's sections are matched in tree order
	visible, hidden := 0, 0
	var walk func(prefix string, cmds []*cli.Command)
	walk = func(prefix string, cmds []*cli.Command) {
		for _, c := range cmds {
			path := strings.TrimSpace(prefix + " " + c.Name)
			if !completable(c) {
				hidden++
				for shell, script := range scripts {
					if strings.Contains(script, entry[shell](path)) || strings.Contains(script, "'"+c.Name+"'") {
						t.Errorf("the %s completion offers the hidden command %q", shell, path)
					}
				}
				for _, h := range headings {
					if h[1] == c.Name {
						t.Errorf("the manual page has a section for the hidden command %q", path)
					}
				}
				continue
			}
			visible++
			for shell, script := range scripts {
				if !strings.Contains(script, entry[shell](path)) {
					t.Errorf("the %s completion has no entry for %q", shell, path)
				}
			}
			found := false
			for ; next < len(headings); next++ {
				if headings[next][1] == c.Name {
					found = true
					break
				}
			}
			if !found {
				t.Errorf("the manual page has no section for %q (after the previous command's)", path)
			}
			walk(path, c.Subcommands)
		}
	}
	walk("", (&app{getenv: os.Getenv}).cliApp().Commands)
	if visible < 10 || hidden < 2 {
		t.Fatalf("walked %d visible and %d hidden commands: the tree is not what the test expects", visible, hidden)
	}
}
