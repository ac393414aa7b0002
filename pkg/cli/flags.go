package cli

import (
	"slices"

	"github.com/urfave/cli/v2"

	"github.com/stptunnel/stptunnel/pkg/lambdaenv"
	"github.com/stptunnel/stptunnel/pkg/statedir"
	"github.com/stptunnel/stptunnel/pkg/tunnel"
)

// Flag names and the environment variables they read (CONTRACT.md §3). Every command builds its flags from these,
// so a name is written once.
const (
	flagRegion   = "region"
	flagProfile  = "profile"
	flagStateDir = "state-dir"
	flagQuiet    = "quiet"
	flagNoColor  = "no-color"

	flagLocal    = "local"
	flagFunction = "function"
	flagPrefix   = "prefix"
	flagStack    = "stack"
	flagMap      = "map"
	flagVPC      = "vpc"

	flagTo         = "to"
	flagTunnelHost = "tunnel-host"
	flagSecret     = "secret"
	flagEngine     = "engine"
	flagBorePath   = "bore-path"
	flagDetach     = "detach"
	flagWindow     = "reconnect-window"

	flagOut         = "out"
	flagDryRun      = "dry-run"
	flagNoWait      = "no-wait"
	flagConcurrency = "concurrency"
	flagForce       = "force"
	flagNoTunnel    = "no-tunnel"
	flagTakeOver    = "take-over"
	flagSession     = "session"

	flagLocalHost   = "local-host"
	flagPort        = "port"
	flagMinPort     = "min-port"
	flagMaxPort     = "max-port"
	flagBindAddr    = "bind-addr"
	flagBindTunnels = "bind-tunnels"
	flagControlPort = "control-port"
	flagAllow       = "allow"
	flagMaxTunnels  = "max-tunnels-per-client"
	flagMaxPending  = "max-pending-per-client"

	envRegion     = "AWS_REGION"
	envProfile    = "AWS_PROFILE"
	envStateDir   = "STPTUNNEL_STATE_DIR"
	envNoColor    = "NO_COLOR"
	envBoreSrv    = "BORE_SERVER"
	envBoreSec    = "BORE_SECRET"
	envBorePath   = "STPTUNNEL_BORE_PATH"
	envTunnelHost = "STPTUNNEL_TUNNEL_HOST"
	envLocalPort  = "BORE_LOCAL_PORT"
	envMinPort    = "BORE_MIN_PORT"
	envMaxPort    = "BORE_MAX_PORT"

	defaultStateDir = statedir.DefaultName

	// A self-hosted server caps the tunnels one client address can hold, so one client cannot take every port.
	// Generous for a team behind one NAT; 0 lifts the cap. (Waiting visitors: bore.DefaultMaxPendingPerClient.)
	defaultMaxTunnelsPerClient = 64
)

// Flag categories, so `--help` groups them the way the README does.
const (
	catGlobal = "Global"
	catLocal  = "Local resources"
	catScope  = "Scope"
	catTunnel = "Tunnel"
	catPatch  = "Patch"
)

// globalFlags are accepted before the command and by every command (`stptunnel --region X detect` and
// `stptunnel detect --region X` both work). Fresh values on every call: urfave/cli flags hold state.
func globalFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: flagRegion, Category: catGlobal, EnvVars: []string{envRegion}, Usage: "AWS region"},
		&cli.StringFlag{Name: flagProfile, Category: catGlobal, EnvVars: []string{envProfile}, Usage: "AWS shared-config profile"},
		&cli.StringFlag{Name: flagStateDir, Category: catGlobal, EnvVars: []string{envStateDir}, Value: defaultStateDir, Usage: "where the journal, lock and detached-session record live"},
		&cli.BoolFlag{Name: flagQuiet, Aliases: []string{"q"}, Category: catGlobal, Usage: "print only warnings and errors on stderr"},
		&cli.BoolFlag{Name: flagNoColor, Category: catGlobal, Usage: "never colour the output (also when NO_COLOR is set)"},
	}
}

func localFlag() cli.Flag {
	return &cli.StringSliceFlag{Name: flagLocal, Category: catLocal,
		Usage: "a local resource, `NAME[:TYPE]=URL` or NAME=HOST:PORT (repeatable); TYPE is postgres|mysql|redis|dynamodb|tcp"}
}

// selectFlags choose the functions a command looks at: detect, dev, env restore and env status.
func selectFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: flagFunction, Category: catScope, Usage: "only this function, `NAME|ARN` (repeatable)"},
		&cli.StringFlag{Name: flagPrefix, Category: catScope, Usage: "only functions whose name starts with `P`"},
		&cli.StringFlag{Name: flagStack, Category: catScope, Usage: "only the functions of this CloudFormation stack"},
	}
}

func scopeFlags() []cli.Flag {
	return append(selectFlags(),
		&cli.StringSliceFlag{Name: flagMap, Category: catScope, Usage: "bind variable ENV to a resource, `ENV=RESOURCE` (repeatable)"},
		&cli.StringFlag{Name: flagVPC, Category: catScope, Value: "check", Usage: "functions in a VPC: check (skip those without a NAT route) | skip | allow"},
	)
}

func tunnelFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: flagTo, Category: catTunnel, EnvVars: []string{envBoreSrv}, DefaultText: tunnel.DefaultServer,
			Usage: "bore server, `HOST[:CONTROL_PORT][#SECRET_VAR]`; repeat it (or separate with commas) to list fallbacks in order of preference; #SECRET_VAR names the environment variable holding that server's secret"},
		tunnelHostFlag(),
		&cli.StringFlag{Name: flagSecret, Category: catTunnel, EnvVars: []string{envBoreSec}, Usage: "bore server secret (for every server without its own #SECRET_VAR)"},
		&cli.DurationFlag{Name: flagWindow, Category: catTunnel, Value: tunnel.DefaultReconnectWindow,
			Usage: "how long a tunnel that lost its server retries it before moving to the next --to server (or giving up)"},
		&cli.StringFlag{Name: flagEngine, Category: catTunnel, Value: "native", Usage: "native (built in) | bore (external bore binary)"},
		&cli.StringFlag{Name: flagBorePath, Category: catTunnel, EnvVars: []string{envBorePath}, Usage: "path of the bore binary for --engine bore"},
	}
}

// tunnelHostFlag is --tunnel-host: tunnel open and dev write it into the variables, detect checks VPC functions
// against it.
func tunnelHostFlag() cli.Flag {
	return &cli.StringFlag{Name: flagTunnelHost, Category: catTunnel, EnvVars: []string{envTunnelHost},
		Usage: "the `HOST` the functions reach the bore server by, when not --to's (a server inside their VPC: its private address); one --to only"}
}

func patchFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: flagDryRun, Category: catPatch, Usage: "print the patches without writing anything"},
		&cli.BoolFlag{Name: flagNoWait, Category: catPatch, Usage: "do not wait for LastUpdateStatus Successful"},
		&cli.IntFlag{Name: flagConcurrency, Category: catPatch, Value: lambdaenv.DefaultConcurrency, Usage: "Lambda API calls in flight at once (reads, writes and polls; waits hold none)"},
		&cli.BoolFlag{Name: flagTakeOver, Category: catPatch, Usage: "also patch the functions another session holds (in-use), sharing them: whichever session restores, they get their deployed values back"},
	}
}

// outFlag is --out FILE on every command that prints a document.
func outFlag() []cli.Flag {
	return []cli.Flag{&cli.StringFlag{Name: flagOut, Category: catGlobal, Usage: "write the document to `FILE` (atomically, mode 0600) instead of stdout"}}
}

// withGlobals appends the global flags to a command's own.
func withGlobals(flags ...[]cli.Flag) []cli.Flag {
	return append(slices.Concat(flags...), globalFlags()...)
}

// globalString reads a global flag wherever it was given: on the command itself, or before it. A command-level
// definition would otherwise hide the value given before the command.
func globalString(c *cli.Context, name string) string {
	for _, ctx := range c.Lineage() {
		if slices.Contains(ctx.LocalFlagNames(), name) {
			return ctx.String(name)
		}
	}
	return c.String(name)
}

// globalBool is globalString for booleans.
func globalBool(c *cli.Context, name string) bool {
	for _, ctx := range c.Lineage() {
		if slices.Contains(ctx.LocalFlagNames(), name) {
			return ctx.Bool(name)
		}
	}
	return c.Bool(name)
}
