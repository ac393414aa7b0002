package session

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stptunnel/stptunnel/pkg/awssim"
	"github.com/stptunnel/stptunnel/pkg/bore"
	"github.com/stptunnel/stptunnel/pkg/bore/boretest"
	"github.com/stptunnel/stptunnel/pkg/connstr"
	"github.com/stptunnel/stptunnel/pkg/doc"
	"github.com/stptunnel/stptunnel/pkg/tunnel"
)

// Failover in the dev composition: the tunnel moves to the next server and dev re-patches exactly the functions
// bound to it; the restore is exact whatever happened.

const failoverWindow = time.Second

// withServers points the fixture's tunnels at servers, in order, with short start retries and window.
func (f *fixture) withServers(servers ...string) {
	f.opts.Tunnel.Servers = nil
	for _, s := range servers {
		f.opts.Tunnel.Servers = append(f.opts.Tunnel.Servers, tunnel.Server{Addr: s})
	}
	f.opts.Tunnel.RetryDelay = 10 * time.Millisecond
	f.opts.Tunnel.ReconnectWindow = failoverWindow
}

// publicOf is the address api's variable names now.
func (f *fixture) publicOf() string {
	env, _ := f.sim.Env("api")
	_, rest, _ := strings.Cut(env["STP_POSTGRES_DB_CONNECTION_STRING"], "@")
	addr, _, _ := strings.Cut(rest, "/")
	return addr
}

// closedAddr is a loopback address nothing listens on: a server that is down.
func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// The first server dies during the session and never comes back: within the reconnect window (plus the time to
// patch) api names an address of the second server, traffic flows through it, each function is re-patched once,
// for its own resource's move only, the unrelated function is never written, and the restore is exact.
func TestDevFollowsFailover(t *testing.T) {
	f := newFixture(t)
	second := boretest.Start(t, bore.ServerConfig{})
	f.withServers(f.server.Addr().String(), second.Addr().String())
	// A second resource, bound to another function: its tunnel moves too, on its own.
	cache := startEcho(t).Addr().String()
	f.sim.PutFunction(awssim.Function{Name: "worker", Env: map[string]string{"STP_CACHE_CONNECTION_STRING": "redis://cache.x.euw1.cache.amazonaws.com:6379/0"}})
	local, err := connstr.ParseLocal("cache=redis://" + cache)
	if err != nil {
		t.Fatal(err)
	}
	f.opts.Detect.Locals = append(f.opts.Detect.Locals, Local{Local: local, Flag: "--local cache"})
	f.opts.Tunnel.Locals = f.opts.Detect.Locals
	before, _ := f.sim.Env("api")
	workerBefore, _ := f.sim.Env("worker")
	var followed time.Duration
	f.opts.During = func(ctx context.Context, _ *doc.Document) error {
		first := f.publicOf()
		if err := echoThrough(first); err != nil {
			return err
		}
		f.server.Close()
		killed := time.Now()
		for f.publicOf() == first {
			if time.Since(killed) > failoverWindow+30*time.Second {
				return fmt.Errorf("api still names %s %v after its server died", first, time.Since(killed))
			}
			time.Sleep(10 * time.Millisecond)
		}
		followed = time.Since(killed)
		now := f.publicOf()
		if err := echoThrough(now); err != nil {
			return fmt.Errorf("after the move: %w", err)
		}
		if second.Stats().ConnectionsForwarded != 1 {
			return fmt.Errorf("the second server forwarded %d connections, want 1", second.Stats().ConnectionsForwarded)
		}
		// The cache tunnel moved too: wait until worker follows it (the document is the session's until it ends).
		for f.sim.Updates("worker") < 2 {
			if time.Since(killed) > failoverWindow+30*time.Second {
				return errors.New("worker did not follow the cache tunnel")
			}
			time.Sleep(10 * time.Millisecond)
		}
		return nil
	}
	d := doc.New()
	if err := Dev(t.Context(), d, f.opts, f.env); err != nil {
		t.Fatalf("Dev: %v (events %s)", err, f.events.kinds())
	}
	tunnels, _ := d.Tunnels()
	if len(tunnels) != 2 || tunnels[0].Server != second.Addr().String() || tunnels[1].Server != second.Addr().String() {
		t.Fatalf("the document's tunnels: %+v", tunnels)
	}
	t.Logf("api followed the tunnel to the second server %v after the first died (window %v)", followed.Round(time.Millisecond), failoverWindow)
	if followed < failoverWindow {
		t.Errorf("followed after %v, before the window", followed)
	}
	after, _ := f.sim.Env("api")
	if !maps.Equal(before, after) {
		t.Fatalf("after the session api has %v, want %v", after, before)
	}
	if after, _ := f.sim.Env("worker"); !maps.Equal(workerBefore, after) {
		t.Fatalf("after the session worker has %v, want %v", after, workerBefore)
	}
	for _, fn := range []string{"api", "worker"} {
		if n := f.sim.Updates(fn); n != 3 {
			t.Errorf("%s was updated %d times, want 3 (patch, one re-patch, restore)", fn, n)
		}
	}
	if f.sim.Updates("other") != 0 {
		t.Fatal("an unrelated function was written")
	}
	moved := map[string]int{}
	for _, e := range f.events.events {
		if fe, ok := e.(Following); ok && fe.Done {
			if fe.Server != second.Addr().String() || fe.PreviousServer != f.server.Addr().String() {
				t.Errorf("Following = %+v", fe)
			}
			moved[fe.Resource]++
		}
	}
	if moved["postgresDb"] != 1 || moved["cache"] != 1 {
		t.Fatalf("followed %v, want each resource once (events %s)", moved, f.events.kinds())
	}
}
