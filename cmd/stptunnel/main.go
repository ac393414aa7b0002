// Command stptunnel lets deployed AWS Lambda functions use the databases running on your machine.
package main

import (
	"context"
	"os"

	"github.com/stptunnel/stptunnel/pkg/cli"
)

// Set by the linker: -ldflags "-X main.version=... -X main.commit=... -X main.date=...".
var version, commit, date string

func main() {
	os.Exit(cli.Main(context.Background(), cli.BuildInfo{Version: version, Commit: commit, Date: date}, os.Args, os.Stdin, os.Stdout, os.Stderr))
}
