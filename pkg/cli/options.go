package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/smithy-go/logging"
	"github.com/urfave/cli/v2"

	"github.com/stptunnel/stptunnel/pkg/bore"
	"github.com/stptunnel/stptunnel/pkg/connstr"
	"github.com/stptunnel/stptunnel/pkg/detect"
	"github.com/stptunnel/stptunnel/pkg/session"
	"github.com/stptunnel/stptunnel/pkg/tunnel"
)

// This file turns flags into pkg/session's options, once per command: every flag is checked here, and a bad one
// is a usage error (exit 2) naming it, before anything is done.

// envRetryDelay overrides the 2 s between tunnel start attempts. Not part of the contract: scripts use it to
// test the retries quickly.
const envRetryDelay = "STPTUNNEL_RETRY_DELAY"

// sessionEnv is what every step takes from the command line: the AWS configuration from --region and
// --profile, the state dir, and the renderer of the steps' events.
func (a *app) sessionEnv(c *cli.Context) session.Env {
	return session.Env{
		AWSConfig: func(ctx context.Context, region string) (aws.Config, error) { return a.awsConfig(ctx, c, region) },
		StateDir:  stateDir(c),
		Report:    a.report,
	}
}

// awsConfig loads the SDK's default configuration chain (environment, shared config and SSO profiles,
// AWS_ENDPOINT_URL*), with --region and --profile applied on top. region is the document's region, used when
// neither the flag nor the environment gives one.
func (a *app) awsConfig(ctx context.Context, c *cli.Context, region string) (aws.Config, error) {
	var opts []func(*config.LoadOptions) error
	if r := globalString(c, flagRegion); r != "" {
		region = r
	}
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	if p := globalString(c, flagProfile); p != "" {
		opts = append(opts, config.WithSharedConfigProfile(p))
	}
	// The SDK's own log lines (retries, deprecations) go through our output, redacted, never raw on stderr.
	opts = append(opts, config.WithLogger(logging.LoggerFunc(func(_ logging.Classification, format string, v ...any) {
		a.ui.warn("AWS SDK: "+format, v...)
	})))
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("loading AWS configuration: %w\n  %s", err, awsHelp)
	}
	if cfg.Region == "" {
		return aws.Config{}, usageError("no AWS region: pass --region, set AWS_REGION, or put \"region\" in the document")
	}
	// Credentials are looked for now, once (the SDK caches them), so that none found is said plainly here rather
	// than as the tail of the first API call's error.
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		if ctx.Err() != nil {
			return aws.Config{}, ctx.Err()
		}
		cause := lastCause(err)
		if strings.Contains(cause, "IMDS") { // the chain's last resort, an instance role, is all it says
			cause = "none in the environment, the shared config and credentials files, or an instance role"
		}
		return aws.Config{}, fmt.Errorf("no AWS credentials found (%s)\n  %s", cause, awsHelp)
	}
	return cfg, nil
}

// awsHelp says where the SDK's default chain looks, for a configuration that could not be loaded.
const awsHelp = "set AWS_PROFILE to a profile of ~/.aws/config (run `aws sso login --profile NAME` first for an SSO " +
	"profile), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; --region or AWS_REGION sets the region"

// lastCause is the innermost of an error's messages: the SDK's chain errors nest "a: b: c, d".
func lastCause(err error) string {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err.Error()
		}
		err = next
	}
}

// stateDir returns the state directory given by --state-dir / STPTUNNEL_STATE_DIR.
func stateDir(c *cli.Context) string {
	if d := strings.TrimSpace(globalString(c, flagStateDir)); d != "" {
		return d
	}
	return defaultStateDir
}

// locals parses --local. Under GitHub Actions each URL's password is masked before anything prints it.
func (a *app) locals(c *cli.Context) ([]session.Local, error) {
	var out []session.Local
	for _, spec := range c.StringSlice(flagLocal) {
		// Masked before it is parsed: a spec that does not parse is named in the error, and the runner must hide
		// its password there too.
		a.ui.addSecret(secretsIn(spec)...)
		l, err := connstr.ParseLocal(spec)
		if err != nil {
			return nil, asUsage(err) // names --local and the spec, redacted
		}
		out = append(out, session.Local{Local: l, Flag: fmt.Sprintf("--local %q", connstr.Redact(spec))})
	}
	return out, nil
}

func (a *app) detectOptions(c *cli.Context, locals []session.Local) (session.DetectOptions, error) {
	vpc, err := detect.ParseVPCMode(c.String(flagVPC))
	if err != nil {
		return session.DetectOptions{}, usageError("--vpc: %v", err)
	}
	scope, err := scopeOptions(c)
	if err != nil {
		return session.DetectOptions{}, err
	}
	host, err := tunnelHost(c)
	if err != nil {
		return session.DetectOptions{}, err
	}
	opts := session.DetectOptions{Locals: locals, Maps: c.StringSlice(flagMap), Scope: scope, VPC: vpc, Public: a.worstPublic(c, host),
		TunnelHost: host}
	if opts.TunnelHost == "" {
		opts.TunnelHost, _, _ = bore.SplitServer(firstServer(a.servers(c)))
	}
	return opts, nil
}

// scopeOptions reads --function, --prefix and --stack (selectFlags).
func scopeOptions(c *cli.Context) (detect.Scope, error) {
	scope := detect.Scope{Prefix: c.String(flagPrefix), Stack: strings.TrimSpace(c.String(flagStack))}
	for _, f := range c.StringSlice(flagFunction) {
		if f = strings.TrimSpace(f); f == "" {
			return detect.Scope{}, usageError("--function: empty name")
		}
		if !slices.Contains(scope.Functions, f) {
			scope.Functions = append(scope.Functions, f)
		}
	}
	if len(scope.Functions) > 0 && (scope.Prefix != "" || scope.Stack != "") {
		return detect.Scope{}, usageError("--function selects exactly the functions named: it cannot be combined with --prefix or --stack")
	}
	return scope, nil
}

// tunnelHost is --tunnel-host, checked; "" when not given.
func tunnelHost(c *cli.Context) (string, error) {
	host, err := tunnel.ParseTunnelHost(c.String(flagTunnelHost))
	if err != nil {
		return "", usageError("--%s %v", flagTunnelHost, err)
	}
	return host, nil
}

// servers are the --to entries, as given (--to when the command has it, else BORE_SERVER).
func (a *app) servers(c *cli.Context) []string {
	for _, ctx := range c.Lineage() {
		if slices.Contains(ctx.FlagNames(), flagTo) {
			if servers := ctx.StringSlice(flagTo); len(servers) > 0 {
				return servers
			}
			break
		}
	}
	return []string{a.getenv(envBoreSrv)}
}

// firstServer is the first server of the --to entries, HOST[:PORT] (its #SECRET_VAR dropped), or bore.pub.
func firstServer(entries []string) string {
	for _, entry := range entries {
		for _, s := range strings.Split(entry, ",") {
			if s, _, _ = strings.Cut(s, "#"); strings.TrimSpace(s) != "" {
				return strings.TrimSpace(s)
			}
		}
	}
	return tunnel.DefaultServer
}

// worstPublic is the longest public address a tunnel could get, as the functions see it: the tunnel host when
// given, else the longest host among the bore servers (--to when the command has it, else BORE_SERVER, else
// bore.pub), with a five-digit port. Detect sizes patched variables with it.
func (a *app) worstPublic(c *cli.Context, tunnelHost string) connstr.HostPort {
	if tunnelHost != "" {
		return connstr.HostPort{Host: tunnelHost, Port: 65535}
	}
	servers := a.servers(c)
	worst := connstr.HostPort{Host: tunnel.DefaultServer, Port: 65535}
	longest := 0
	for _, entry := range servers {
		for _, s := range strings.Split(entry, ",") {
			s, _, _ = strings.Cut(s, "#") // the secret's variable
			if host, _, err := bore.SplitServer(strings.TrimSpace(s)); err == nil && len(host) > longest {
				worst.Host, longest = host, len(host)
			}
		}
	}
	return worst
}

func (a *app) tunnelOptions(c *cli.Context, locals []session.Local) (session.TunnelOptions, error) {
	servers, err := tunnel.ParseServers(c.StringSlice(flagTo), c.String(flagSecret), a.getenv)
	if err != nil {
		return session.TunnelOptions{}, usageError("--%s: %v", flagTo, err)
	}
	for _, s := range servers {
		a.ui.addSecret(s.Secret)
	}
	window := c.Duration(flagWindow)
	if window <= 0 {
		return session.TunnelOptions{}, usageError("--%s must be positive, got %v", flagWindow, window)
	}
	host, err := tunnelHost(c)
	if err != nil {
		return session.TunnelOptions{}, err
	}
	if host != "" {
		// A tunnel host is one server's private address: a tunnel failing over to another server would name it
		// still, and the functions behind it (no NAT, as a rule) could reach no other server anyway.
		if len(servers) != 1 {
			return session.TunnelOptions{}, usageError("--%s names one server's address: give a single --%s with it (not %s)",
				flagTunnelHost, flagTo, tunnel.Addrs(servers))
		}
		servers[0].TunnelHost = host
	}
	opts := session.TunnelOptions{Locals: locals, Servers: servers, Engine: c.String(flagEngine), ReconnectWindow: window}
	switch opts.Engine {
	case tunnel.EngineNative:
	case tunnel.EngineBore:
		exe, _ := os.Executable() // best effort: without it, --bore-path or PATH still work
		if opts.BorePath, err = tunnel.FindBore(c.String(flagBorePath), exe); err != nil {
			return session.TunnelOptions{}, fmt.Errorf("--engine bore: %w", err)
		}
	default:
		return session.TunnelOptions{}, usageError("--engine %q: want %s or %s", opts.Engine, tunnel.EngineNative, tunnel.EngineBore)
	}
	opts.RetryDelay = a.retryDelay()
	return opts, nil
}

// retryDelay is STPTUNNEL_RETRY_DELAY, or 0 (the default pause between tunnel start attempts).
func (a *app) retryDelay() time.Duration {
	d, _ := time.ParseDuration(a.getenv(envRetryDelay))
	return d
}

func patchOptions(c *cli.Context) (session.PatchOptions, error) {
	concurrency := c.Int(flagConcurrency)
	if concurrency < 1 {
		return session.PatchOptions{}, usageError("--concurrency must be at least 1, got %d", concurrency)
	}
	return session.PatchOptions{Concurrency: concurrency, NoWait: c.Bool(flagNoWait), DryRun: c.Bool(flagDryRun),
		TakeOver: c.Bool(flagTakeOver)}, nil
}

func restoreOptions(c *cli.Context) (session.RestoreOptions, error) {
	scope, err := scopeOptions(c)
	if err != nil {
		return session.RestoreOptions{}, err
	}
	return session.RestoreOptions{Force: c.Bool(flagForce), Scope: scope, Session: strings.TrimSpace(c.String(flagSession))}, nil
}
