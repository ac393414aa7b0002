package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"

	"github.com/urfave/cli/v2"

	"github.com/stptunnel/stptunnel/pkg/bore"
	"github.com/stptunnel/stptunnel/pkg/connstr"
	"github.com/stptunnel/stptunnel/pkg/doc"
	"github.com/stptunnel/stptunnel/pkg/tunnel"
)

// boreCommand is the bore-compatible CLI (bore 0.5 flags and env vars), so one binary is both ends of a tunnel.
func (a *app) boreCommand() *cli.Command {
	return &cli.Command{
		Name:  "bore",
		Usage: "bore-compatible client and server (local | server)",
		Subcommands: []*cli.Command{
			{
				Name:      "local",
				Usage:     "expose LOCAL_PORT through a bore server",
				ArgsUsage: "LOCAL_PORT",
				Description: "Exposes LOCAL_PORT (or $" + envLocalPort + ") on a public port of the bore server --to and prints\n" +
					"`listening at HOST:PORT`, as bore 0.5 does; it reconnects when the link drops.",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: flagLocalHost, Aliases: []string{"l"}, Value: "localhost", Usage: "the local host to expose"},
					&cli.StringFlag{Name: flagTo, Aliases: []string{"t"}, EnvVars: []string{envBoreSrv}, Usage: "bore server, `HOST[:CONTROL_PORT]` (required)"},
					&cli.IntFlag{Name: flagPort, Aliases: []string{"p"}, Usage: "public port to ask for (0: any)"},
					&cli.StringFlag{Name: flagSecret, Aliases: []string{"s"}, EnvVars: []string{envBoreSec}, Usage: "secret for authentication"},
				},
				Action: a.boreLocal,
			},
			{
				Name:  "server",
				Usage: "run a bore server",
				Flags: []cli.Flag{
					&cli.IntFlag{Name: flagMinPort, EnvVars: []string{envMinPort}, Value: 1024, Usage: "minimum public port"},
					&cli.IntFlag{Name: flagMaxPort, EnvVars: []string{envMaxPort}, Value: 65535, Usage: "maximum public port"},
					&cli.StringFlag{Name: flagSecret, Aliases: []string{"s"}, EnvVars: []string{envBoreSec}, Usage: "secret clients must authenticate with"},
					&cli.StringFlag{Name: flagBindAddr, Value: "0.0.0.0", Usage: "IP address of the control port"},
					&cli.StringFlag{Name: flagBindTunnels, Usage: "IP address of the public ports (default: --bind-addr)"},
					&cli.IntFlag{Name: flagControlPort, Value: bore.DefaultControlPort, Usage: "control port"},
					&cli.StringSliceFlag{Name: flagAllow, Usage: "only visitors from this `CIDR` reach the public ports (repeatable)"},
					&cli.IntFlag{Name: flagMaxTunnels, Value: defaultMaxTunnelsPerClient, Usage: "tunnels one client address may hold at once (0: no cap)"},
					&cli.IntFlag{Name: flagMaxPending, Value: bore.DefaultMaxPendingPerClient, Usage: "visitors waiting for one client address's accept at once, a memory bound (0: no cap); a tunnel whose client stops accepting has new visitors refused after 3 s anyway"},
				},
				Action: a.boreServer,
			},
		},
	}
}

func (a *app) boreLocal(c *cli.Context) error {
	a.relayClient()
	if err := parseFlagsAfterArg(c); err != nil {
		return usageError("%v (see --help)", err)
	}
	portText := c.Args().First()
	if portText == "" {
		portText = a.getenv(envLocalPort)
	}
	localPort, err := strconv.Atoi(portText)
	if err != nil || localPort < 1 || localPort > 65535 {
		return usageError("LOCAL_PORT %q: want a port number 1-65535 (argument or %s)", portText, envLocalPort)
	}
	if c.String(flagTo) == "" {
		return usageError("--to HOST is required (or %s)", envBoreSrv)
	}
	secret := c.String(flagSecret)
	a.ui.addSecret(secret)
	servers, err := tunnel.ParseServers([]string{c.String(flagTo)}, secret, a.getenv)
	if err != nil {
		return usageError("--%s: %v", flagTo, err)
	}
	if len(servers) > 1 {
		return usageError("--%s: bore local takes one server, got %s", flagTo, tunnel.Addrs(servers))
	}
	// One tunnel of the tunnel session, with bore's rules: the local service may come up later, a start failure
	// is final, and a lost server is retried (with backoff) for as long as the command runs.
	local := net.JoinHostPort(c.String(flagLocalHost), strconv.Itoa(localPort))
	spec := tunnel.Spec{Resource: doc.Resource{Name: local, Type: connstr.TypeTCP, Address: local}, Servers: servers,
		Port: c.Int(flagPort), Engine: tunnel.EngineNative}
	opts := tunnel.Options{Retries: -1, NoLocalCheck: true, ReconnectWindow: -1,
		Logger: slog.New(slog.NewTextHandler(c.App.ErrWriter, nil))}
	ctx, stop := a.interruptible(c.Context)
	defer stop()
	s, err := tunnel.Open(ctx, []tunnel.Spec{spec}, opts)
	if err != nil {
		return fmt.Errorf("bore local: %w", err)
	}
	defer s.Close()
	fmt.Fprintf(c.App.Writer, "listening at %s\n", s.Tunnels()[0].Public)
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-s.Events():
			switch ev.Kind {
			case tunnel.Up, tunnel.Moved:
				fmt.Fprintf(c.App.Writer, "listening at %s\n", ev.Public)
			case tunnel.Down:
				a.ui.warn("Tunnel down, reconnecting: %v", ev.Err)
			case tunnel.Lost:
				return ev.Err
			}
		}
	}
}

// parseFlagsAfterArg applies the flags that follow the first argument: bore accepts
// `bore local 5432 --to HOST`, while urfave/cli v2 stops parsing flags at the first argument.
func parseFlagsAfterArg(c *cli.Context) error {
	if c.NArg() <= 1 {
		return nil
	}
	fs := flag.NewFlagSet(c.Command.Name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	names := map[string][]string{} // every name of a flag, aliases included: each holds its own value
	for _, f := range c.Command.Flags {
		if err := f.Apply(fs); err != nil {
			return err
		}
		for _, n := range f.Names() {
			names[n] = f.Names()
		}
	}
	if err := fs.Parse(c.Args().Tail()); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q: bore local takes one LOCAL_PORT", fs.Args())
	}
	var err error
	fs.Visit(func(f *flag.Flag) {
		for _, n := range names[f.Name] {
			err = errors.Join(err, c.Set(n, f.Value.String()))
		}
	})
	return err
}

func (a *app) boreServer(c *cli.Context) error {
	a.raiseFileLimit()
	minPort, maxPort := c.Int(flagMinPort), c.Int(flagMaxPort)
	if minPort < 1 || maxPort > 65535 || minPort > maxPort {
		return usageError("port range %d-%d is empty or outside 1-65535", minPort, maxPort)
	}
	var allow []netip.Prefix
	for _, s := range c.StringSlice(flagAllow) {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			addr, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return usageError("--allow %q: want a CIDR such as 203.0.113.0/24", s)
			}
			p = netip.PrefixFrom(addr, addr.BitLen())
		}
		allow = append(allow, p)
	}
	if c.Int(flagMaxTunnels) < 0 || c.Int(flagMaxPending) < 0 {
		return usageError("--%s and --%s must be 0 (no cap) or more", flagMaxTunnels, flagMaxPending)
	}
	a.ui.addSecret(c.String(flagSecret))
	s, err := bore.NewServer(bore.ServerConfig{
		BindAddr:    c.String(flagBindAddr),
		BindTunnels: c.String(flagBindTunnels),
		ControlPort: c.Int(flagControlPort),
		MinPort:     minPort,
		MaxPort:     maxPort,
		Secret:      c.String(flagSecret),
		Allow:       allow,
		Logger:      slog.New(slog.NewTextHandler(c.App.ErrWriter, nil)),

		MaxTunnelsPerClient: c.Int(flagMaxTunnels),
		MaxPendingPerClient: c.Int(flagMaxPending),
	})
	if err != nil {
		return asUsage(err)
	}
	ctx, stop := a.interruptible(c.Context)
	defer stop()
	if err := s.Start(ctx); err != nil {
		return err
	}
	return s.Wait()
}

// relayClient prepares a process that relays a bore client's connections (bore local, dev, tunnel open and its
// holder): the open-file limit raised, and Go on one thread (bore.LimitClientProcs).
func (a *app) relayClient() {
	a.raiseFileLimit()
	bore.LimitClientProcs(a.getenv)
}

// raiseFileLimit raises the open-file limit of a command that relays connections (each holds descriptors on
// both sides), and warns when even the hard limit bounds the connections it can carry.
func (a *app) raiseFileLimit() {
	limit, err := bore.RaiseOpenFileLimit()
	if err != nil {
		a.ui.warn("%v", err)
	}
	if w := bore.FileLimitWarning(limit); w != "" {
		a.ui.warn("%s", w)
	}
}
