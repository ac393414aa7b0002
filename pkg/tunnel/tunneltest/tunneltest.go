// Package tunneltest holds test helpers for code that runs tunnels: a stand-in for the external bore binary.
package tunneltest

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/stptunnel/stptunnel/pkg/bore"
)

// BoreStandIn behaves like `bore local` of bore 0.5 for the tests of the external engine: the same command line
// (`local PORT --local-host H --to SERVER [--port P] [--secret S]`, BORE_SECRET), a real bore client underneath
// (pkg/bore, without reconnection, as bore), logs coloured the way bore's tracing output is, `Error: ...` on
// stderr and exit 1 when it cannot start, and exit 0 when the server drops it (bore 0.5 does the same). It
// returns the exit code; ctx ends it as SIGINT ends bore.
func BoreStandIn(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fail := func(err error) int {
		fmt.Fprintf(stderr, "Error: %v\n", err)
		return 1
	}
	if len(args) < 2 || args[0] != "local" {
		return fail(errors.New("usage: bore local <LOCAL_PORT> --to <TO>"))
	}
	fs := flag.NewFlagSet("bore local", flag.ContinueOnError)
	fs.SetOutput(stderr)
	localHost := fs.String("local-host", "localhost", "")
	to := fs.String("to", getenv("BORE_SERVER"), "")
	port := fs.Int("port", 0, "")
	secret := fs.String("secret", getenv("BORE_SECRET"), "")
	if err := fs.Parse(args[2:]); err != nil {
		return 2
	}
	localPort, err := strconv.Atoi(args[1])
	if err != nil {
		return fail(fmt.Errorf("invalid local port %q", args[1]))
	}
	c, err := bore.NewClient(bore.ClientConfig{Server: *to, LocalHost: *localHost, LocalPort: localPort, Port: *port, Secret: *secret})
	if err != nil {
		return fail(err)
	}
	if err := c.Start(ctx); err != nil {
		return fail(err)
	}
	logInfo(stdout, "connected to server \x1b[3mremote_port\x1b[0m\x1b[2m=\x1b[0m"+strconv.Itoa(c.RemotePort()))
	logInfo(stdout, "listening at "+c.PublicAddr())
	c.Wait()
	return 0
}

func logInfo(w io.Writer, msg string) {
	ts := time.Now().UTC().Format("2006-01-02T15:04:05.000000Z")
	fmt.Fprintf(w, "\x1b[2m%s\x1b[0m \x1b[32m INFO\x1b[0m \x1b[2mbore_cli::client\x1b[0m\x1b[2m:\x1b[0m %s\n", ts, msg)
}
