package session

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/stptunnel/stptunnel/pkg/doc"
	"github.com/stptunnel/stptunnel/pkg/statedir"
	"github.com/stptunnel/stptunnel/pkg/tunnel"
)

// HoldLog is where the background process of a detached session writes its messages, in the state dir.
const HoldLog = "tunnels.log"

// TunnelOptions are tunnel open's inputs beyond the document.
type TunnelOptions struct {
	Locals []Local
	// Servers are the bore servers in order of preference, each with its secret (tunnel.ParseServers reads
	// them from --to); none means tunnel.DefaultServer without a secret.
	Servers []tunnel.Server
	// Engine is tunnel.EngineNative or tunnel.EngineBore; BorePath the bore binary for the latter.
	Engine, BorePath string
	// RetryDelay is the pause between start attempts (tunnel.DefaultRetryDelay when 0).
	RetryDelay time.Duration
	// ReconnectWindow is how long a tunnel that lost its server retries it before moving to the next one
	// (tunnel.DefaultReconnectWindow when 0).
	ReconnectWindow time.Duration
}

// TunnelSpecs returns one spec per resource of the document and of opts.Locals (recorded in the document, so the
// next step sees them).
func TunnelSpecs(d *doc.Document, opts TunnelOptions) ([]tunnel.Spec, error) {
	resources, err := Resources(d, opts.Locals)
	if err != nil {
		return nil, err
	}
	if len(resources) == 0 {
		return nil, badInput("no resource to tunnel: pipe a document from `stptunnel detect` or give --local NAME=URL")
	}
	servers := opts.Servers
	if len(servers) == 0 {
		servers = []tunnel.Server{{Addr: tunnel.DefaultServer}}
	}
	specs := make([]tunnel.Spec, 0, len(resources))
	for _, r := range resources {
		specs = append(specs, tunnel.Spec{Resource: r, Servers: servers, Engine: opts.Engine, BorePath: opts.BorePath})
	}
	return specs, nil
}

func (opts TunnelOptions) tunnelOptions(env Env) tunnel.Options {
	return tunnel.Options{RetryDelay: opts.RetryDelay, ReconnectWindow: opts.ReconnectWindow,
		Report: func(ev tunnel.Event) { env.report(TunnelChanged{ev}) }}
}

// OpenTunnels opens the tunnels of specs, reports each and records them in the document's "tunnels". They stay
// open until the returned session is closed.
func OpenTunnels(ctx context.Context, d *doc.Document, specs []tunnel.Spec, opts TunnelOptions, env Env) (*tunnel.Session, error) {
	s, err := tunnel.Open(ctx, specs, opts.tunnelOptions(env))
	if err != nil {
		return nil, err
	}
	tunnels := s.Tunnels()
	for _, t := range tunnels {
		env.report(TunnelStarted{Tunnel: t})
	}
	if err := d.Set(doc.FieldTunnels, tunnels); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Holder is how a detached session's background process is started: the program and its arguments (the same
// binary, through a hidden command that runs tunnel.Hold).
type Holder struct {
	Path string
	Args []string
}

// DetachTunnels hands the tunnels of specs to a background process and returns once it holds them all: they
// outlive this process until `tunnel close`. The tunnels are reported and recorded in the document.
func DetachTunnels(ctx context.Context, d *doc.Document, specs []tunnel.Spec, opts TunnelOptions, holder Holder, env Env) (*tunnel.State, error) {
	dir, err := filepath.Abs(env.StateDir)
	if err != nil {
		return nil, err
	}
	if st, err := tunnel.ReadState(dir); err == nil {
		if st.Alive() {
			return nil, fmt.Errorf("a detached tunnel session is already running (process %d): `stptunnel tunnel close` ends it", st.PID)
		}
		if err := tunnel.RemoveState(dir, st.PID); err != nil {
			return nil, err
		}
	} else if !errors.Is(err, tunnel.ErrNoSession) {
		return nil, err
	}
	if err := statedir.Ensure(dir); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, HoldLog)
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("creating the log of the background process: %w", err)
	}
	defer log.Close()
	cmd := &exec.Cmd{Path: holder.Path, Args: holder.Args, Stderr: log}
	st, err := tunnel.Detach(ctx, cmd, specs, opts.ReconnectWindow)
	if err != nil {
		return nil, fmt.Errorf("%w (background process log: %s)", err, logPath)
	}
	for _, t := range st.Tunnels {
		env.report(TunnelStarted{Tunnel: t})
	}
	if err := d.Set(doc.FieldTunnels, st.Tunnels); err != nil {
		return nil, err
	}
	env.report(TunnelsHeld{PID: st.PID})
	return st, nil
}

// boundSpecs keeps the specs of resources some function is bound to.
func boundSpecs(specs []tunnel.Spec, functions []doc.Function) []tunnel.Spec {
	return slices.DeleteFunc(specs, func(sp tunnel.Spec) bool {
		return !slices.ContainsFunc(functions, func(f doc.Function) bool {
			return slices.ContainsFunc(f.Bindings, func(b doc.Binding) bool { return b.Resource == sp.Resource.Name })
		})
	})
}

// resourceNames lists the specs' resources for a message.
func resourceNames(specs []tunnel.Spec) string {
	names := make([]string, len(specs))
	for i, sp := range specs {
		names[i] = sp.Resource.Name
	}
	return strings.Join(names, ", ")
}
