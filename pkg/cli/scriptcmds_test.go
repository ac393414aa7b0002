package cli

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"

	"github.com/rogpeppe/go-internal/testscript"
)

type scriptCmd = func(ts *testscript.TestScript, neg bool, args []string)

// scriptCmdSets collects the custom testscript commands. Each topic registers its own set from an init function
// in its own scriptcmds_<topic>_test.go: the AWS emulator, the embedded bore server, local services.
var scriptCmdSets = []map[string]scriptCmd{{"exits": cmdExits}}

func registerScriptCmds(set map[string]scriptCmd) { scriptCmdSets = append(scriptCmdSets, set) }

// scriptCommands merges every registered set; a name registered twice is a mistake caught here.
func scriptCommands() map[string]scriptCmd {
	cmds := map[string]scriptCmd{}
	for _, set := range scriptCmdSets {
		for name, fn := range set {
			if _, dup := cmds[name]; dup {
				panic("testscript command registered twice: " + name)
			}
			cmds[name] = fn
		}
	}
	return cmds
}

// cmdExits runs a command and asserts its exact exit code: `exits 2 stptunnel detect --bad`. Its stdout and stderr
// are kept for the next stdout/stderr/cmp commands, as exec does.
func cmdExits(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exits CODE COMMAND [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exits: bad code %q", args[0])
	}
	got := 0
	if err := ts.Exec(args[1], args[2:]...); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("exits: %v", err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("%s exited %d, want %d", args[1], got, want)
	}
}

// linkSelf makes $WORK/bin/NAME a link to this test binary, which acts as another program when run under that
// name (see the init functions that check os.Args[0]), and exports the link's path as envVar.
func linkSelf(ts *testscript.TestScript, name, envVar string) {
	exe, err := os.Executable()
	ts.Check(err)
	dir := ts.MkAbs("bin")
	ts.Check(os.MkdirAll(dir, 0o755))
	path := filepath.Join(dir, name)
	ts.Check(os.Symlink(exe, path))
	ts.Setenv(envVar, path)
}
