package cli

import (
	"net"

	"github.com/rogpeppe/go-internal/testscript"
)

func init() {
	registerScriptCmds(map[string]scriptCmd{"holdport": cmdHoldPort})
}

// cmdHoldPort listens on ADDR until the script ends, so nothing else can take it: `holdport HOST:PORT`.
// Scripts use it to make a reconnecting tunnel land on another public port.
func cmdHoldPort(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: holdport HOST:PORT")
	}
	ln, err := net.Listen("tcp", args[0])
	ts.Check(err)
	ts.Defer(func() { ln.Close() })
}
