package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stptunnel/stptunnel/internal/cloudside"
	"github.com/stptunnel/stptunnel/internal/services"
	"github.com/stptunnel/stptunnel/pkg/awssim"
	"github.com/stptunnel/stptunnel/pkg/bore"
	"github.com/stptunnel/stptunnel/pkg/bore/boretest"
)

// TestE2ENetns is the end-to-end flow with the cloud side where it physically cannot reach the developer's
// machine: a network namespace whose only link is a veth pair to this one, addressed from a private /30 the test
// creates. The bore server listens on the host side of that pair; the databases listen on the host's loopback,
// which the namespace does not have. The function's code (internal/cloudside, the real driver, with none of its
// simulated refusals) runs inside the namespace: it reaches the database through the tunnel, and only there.
//
// It needs root and iproute2 (`ip netns`); it skips otherwise. The namespace and the veth pair are removed when
// the test ends.
func TestE2ENetns(t *testing.T) {
	ns := netnsSetup(t)
	bin, err := exec.LookPath("stptunnel")
	if err != nil {
		t.Fatalf("the stptunnel test binary is not on PATH (TestMain registers it): %v", err)
	}
	for _, kind := range []string{services.KindPostgres, services.KindRedis} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			netnsFlow(t, ns, bin, services.StartT(t, kind, services.Options{}))
		})
	}
}

func netnsFlow(t *testing.T, ns *netns, bin string, s *services.Server) {
	// The bore server on the host's end of the pair: the one address the namespace can reach.
	boreSrv := boretest.Start(t, bore.ServerConfig{BindAddr: ns.hostIP.String()})
	sc := e2eScenarioFor(t, s)
	// The server's address is a private one (10.200.x.x), which a real function outside any VPC could not reach:
	// detect would skip these functions. Here the namespace does reach it: --vpc allow says so.
	e := &e2eEnv{t: t, bin: bin, stateDir: t.TempDir(), sim: e2eSim(t), bore: boreSrv, detectArgs: []string{"--vpc", "allow"}}
	for _, f := range sc.functions {
		e.sim.PutFunction(awssim.Function{Name: f.name, Runtime: "provided.al2023", Handler: "bootstrap", Env: f.env})
	}
	f := sc.functions[0]

	// Before the session: from the namespace the developer's address is nothing, under any of its spellings.
	// (The host-side veth address at the database's port is refused too: the database listens on loopback only.)
	hostSide := map[string]string{f.variable: strings.Replace(f.env[f.variable], "localhost", ns.hostIP.String(), 1)}
	for _, env := range []map[string]string{f.env, hostSide} {
		if out, err := ns.cloudside(t, f.name, sc.resource.Type, f.variable, env); err == nil {
			t.Fatalf("from the namespace, %s reached the database without a tunnel: %s", f.name, out)
		} else if !strings.Contains(err.Error(), "connection refused") {
			t.Fatalf("from the namespace, %s without a tunnel: %v; want connection refused", f.name, err)
		}
	}

	patched, closeTunnels := e.openAndPatch(sc)
	// Each function's code in the namespace, with the variables Lambda gives it now.
	during := map[string]map[string]string{}
	for _, f := range sc.functions {
		during[f.name], _ = e.sim.Env(f.name)
		before := boreSrv.Stats().ConnectionsForwarded
		out, err := ns.cloudside(t, f.name, sc.resource.Type, f.variable, during[f.name])
		if err != nil {
			t.Fatalf("from the namespace, %s patched to %v: %v", f.name, during[f.name], err)
		}
		var resp cloudside.Response
		if err := json.Unmarshal(out, &resp); err != nil {
			t.Fatalf("cloudside printed %s: %v", out, err)
		}
		if want := "hello from " + f.name; resp.Value != want {
			t.Errorf("%s read back %q, want %q", f.name, resp.Value, want)
		}
		for _, addr := range resp.Dialed {
			if ap, err := netip.ParseAddrPort(addr); err != nil || ap.Addr() != ns.hostIP {
				t.Errorf("%s dialed %s, want only the bore server's %s", f.name, addr, ns.hostIP)
			}
		}
		if boreSrv.Stats().ConnectionsForwarded <= before {
			t.Errorf("%s: the bore server's forwarded counter did not rise", f.name)
		}
		t.Logf("from the namespace, %s: %s (%s) through %v", f.name, resp.Driver, resp.Server, resp.Dialed)
	}

	closeTunnels()
	e2eCheckRestores(t, e.mustRun(patched, "env", "restore"), sc)
	for _, f := range sc.functions {
		env, _ := e.sim.Env(f.name)
		if got, want := awssim.CompactJSON(env), awssim.CompactJSON(f.env); !bytes.Equal(got, want) {
			t.Errorf("%s after restore:\n got %s\nwant %s", f.name, got, want)
		}
		if out, err := ns.cloudside(t, f.name, sc.resource.Type, f.variable, during[f.name]); err == nil {
			t.Errorf("%s reached the database through the closed tunnel: %s", f.name, out)
		} else if !strings.Contains(err.Error(), "connection refused") {
			t.Errorf("%s through the closed tunnel: %v; want connection refused", f.name, err)
		}
	}
}

// netns is a network namespace joined to this one by a veth pair: hostIP on this side, nsIP inside.
type netns struct {
	name          string
	hostIP, nsIP  netip.Addr
	cloudsideLink string // this test binary, named so that it runs as the cloudside program
	dir           string
}

// netnsSetup creates the namespace and the veth pair, or skips the test when it cannot.
func netnsSetup(t *testing.T) *netns {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the network namespace test needs root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("the network namespace test needs iproute2's ip: apt-get install iproute2")
	}
	prefix, ok := netnsFreePrefix(t)
	if !ok {
		t.Skip("no free /30 in 10.200.0.0/16 for the namespace's veth pair")
	}
	id := strconv.Itoa(os.Getpid() % 100000)
	ns := &netns{name: "stptunnel-e2e-" + id, hostIP: prefix.Addr().Next(), dir: t.TempDir()}
	ns.nsIP = ns.hostIP.Next()
	hostIf, nsIf := "stpe2e"+id+"h", "stpe2e"+id+"n" // at most 15 bytes
	if out, err := exec.Command("ip", "netns", "add", ns.name).CombinedOutput(); err != nil {
		t.Skipf("ip netns add is not available here: %v: %s", err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() {
		// Deleting the namespace deletes its end of the pair, and with it the host's end; then make sure.
		if out, err := exec.Command("ip", "netns", "delete", ns.name).CombinedOutput(); err != nil {
			t.Errorf("ip netns delete %s: %v: %s", ns.name, err, out)
		}
		if exec.Command("ip", "link", "show", hostIf).Run() == nil {
			if out, err := exec.Command("ip", "link", "delete", hostIf).CombinedOutput(); err != nil {
				t.Errorf("ip link delete %s: %v: %s", hostIf, err, out)
			}
		}
	})
	bits := strconv.Itoa(prefix.Bits())
	for _, args := range [][]string{
		{"link", "add", hostIf, "type", "veth", "peer", "name", nsIf},
		{"link", "set", nsIf, "netns", ns.name},
		{"addr", "add", ns.hostIP.String() + "/" + bits, "dev", hostIf},
		{"link", "set", hostIf, "up"},
		{"-n", ns.name, "addr", "add", ns.nsIP.String() + "/" + bits, "dev", nsIf},
		{"-n", ns.name, "link", "set", nsIf, "up"},
		// The namespace's own loopback, up: 127.0.0.1 there is a machine with nothing listening.
		{"-n", ns.name, "link", "set", "lo", "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ns.cloudsideLink = filepath.Join(ns.dir, cloudsideProgram)
	if err := os.Symlink(exe, ns.cloudsideLink); err != nil {
		t.Fatal(err)
	}
	t.Logf("namespace %s: %s (here, %s) <-> %s (there, %s)", ns.name, ns.hostIP, hostIf, ns.nsIP, nsIf)
	return ns
}

// netnsFreePrefix picks a /30 of 10.200.0.0/16 that no route of this machine covers but the default one.
func netnsFreePrefix(t *testing.T) (netip.Prefix, bool) {
	t.Helper()
	for i := range 64 {
		n := (os.Getpid() + i*97) % 16384
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 200, byte(n / 64), byte(n % 64 * 4)}), 30)
		out, err := exec.Command("ip", "-4", "route", "show", "match", p.Addr().Next().String()).Output()
		if err != nil {
			return netip.Prefix{}, false
		}
		used := false
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if line != "" && !strings.HasPrefix(line, "default ") {
				used = true
			}
		}
		if !used {
			return p, true
		}
	}
	return netip.Prefix{}, false
}

// cloudside runs a function's code inside the namespace with env, as the cloudside program does (no simulated
// refusals: only the namespace's network decides what it reaches), and returns its response or its error.
func (ns *netns) cloudside(t *testing.T, name, typ, variable string, env map[string]string) ([]byte, error) {
	t.Helper()
	file := filepath.Join(ns.dir, name+"-"+strconv.FormatInt(time.Now().UnixNano(), 36)+".json")
	if err := os.WriteFile(file, awssim.CompactJSON(env), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns.name, ns.cloudsideLink, "-env", file, name, typ, variable)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "AWS_REGION=eu-west-1"}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%v: %s", err, strings.TrimSpace(stderr.String()))
	}
	return bytes.TrimSpace(stdout.Bytes()), nil
}
