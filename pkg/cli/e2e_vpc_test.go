package cli

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"os/exec"
	"strings"
	"testing"

	"github.com/stptunnel/stptunnel/internal/cloudside"
	"github.com/stptunnel/stptunnel/internal/services"
	"github.com/stptunnel/stptunnel/pkg/awssim"
	"github.com/stptunnel/stptunnel/pkg/bore"
	"github.com/stptunnel/stptunnel/pkg/bore/boretest"
)

// TestE2EVPCTunnelHost is the deployment of docs/deploy end to end: a bore server inside the functions' VPC,
// which this machine dials at one address and the functions reach at another, their VPC's private one.
//
// The "VPC" is a network namespace (see TestE2ENetns) whose only link is a veth pair addressed from 10.200.0.0/16:
// the function's code runs inside it and can reach nothing but the host-side address of the pair — the server's
// private address. The server's control port is on this machine's loopback (its "public address", which the
// namespace cannot reach: its own loopback is another one), its public ports on the private address only, and it
// lets only the VPC's block reach them (--allow). The deployed stack names the cloud database; in the emulator,
// worker runs in a VPC holding 10.200.0.0/16 whose subnets route 0.0.0.0/0 to an internet gateway only (no NAT),
// api outside any VPC.
//
// detect keeps worker (its VPC holds the tunnel host) and skips api; tunnel open and env patch point worker's
// variable at PRIVATE:PORT; its code in the namespace reaches the local PostgreSQL through the server; restore
// puts everything back. Needs root and iproute2, and PostgreSQL; skips otherwise.
func TestE2EVPCTunnelHost(t *testing.T) {
	ns := netnsSetup(t)
	bin, err := exec.LookPath("stptunnel")
	if err != nil {
		t.Fatalf("the stptunnel test binary is not on PATH (TestMain registers it): %v", err)
	}
	pg := services.StartT(t, services.KindPostgres, services.Options{})
	vpcBlock := netip.MustParsePrefix("10.200.0.0/16")
	if !vpcBlock.Contains(ns.hostIP) {
		t.Fatalf("the namespace's pair %s is outside the VPC block %s", ns.hostIP, vpcBlock)
	}
	boreSrv := boretest.Start(t, bore.ServerConfig{BindAddr: "127.0.0.1", BindTunnels: ns.hostIP.String(), Allow: []netip.Prefix{vpcBlock}})
	private := ns.hostIP.String()

	const variable = "STP_POSTGRES_DB_CONNECTION_STRING"
	cloudEnv := map[string]string{variable: "postgres://admin:cloudpw@db.cluster-x.eu-west-1.rds.amazonaws.com:5432/app", "LOG_LEVEL": "debug"}
	e := &e2eEnv{t: t, bin: bin, stateDir: t.TempDir(), sim: e2eSim(t), bore: boreSrv}
	if err := e.sim.Apply(awssim.Seed{
		Functions: []awssim.Function{
			{Name: "worker", Runtime: "provided.al2023", Handler: "bootstrap", Env: cloudEnv,
				VPC: &awssim.VPCConfig{SubnetIDs: []string{"subnet-a", "subnet-b"}, SecurityGroupIDs: []string{"sg-worker"}}},
			{Name: "api", Runtime: "provided.al2023", Handler: "bootstrap", Env: cloudEnv},
		},
		Subnets: []awssim.Subnet{{ID: "subnet-a", VpcID: "vpc-e2e"}, {ID: "subnet-b", VpcID: "vpc-e2e"}},
		RouteTables: []awssim.RouteTable{{ID: "rtb-main", VpcID: "vpc-e2e", Main: true, Routes: []awssim.Route{
			{DestinationCidrBlock: vpcBlock.String(), GatewayID: "local"}, {DestinationCidrBlock: "0.0.0.0/0", GatewayID: "igw-1"}}}},
		VPCs: []awssim.VPC{{ID: "vpc-e2e", CidrBlock: vpcBlock.String()}},
		SecurityGroups: []awssim.SecurityGroup{{ID: "sg-worker", Name: "worker", VpcID: "vpc-e2e", Egress: []awssim.Permission{
			{Protocol: "tcp", FromPort: 443, ToPort: 443, CIDRs: []string{"0.0.0.0/0"}},
			{Protocol: "tcp", FromPort: 1024, ToPort: 65535, CIDRs: []string{vpcBlock.String()}}}}},
	}); err != nil {
		t.Fatal(err)
	}
	local := "postgresDb:postgres=" + pg.URL()

	// Without --tunnel-host, the server (dialled on loopback) is no help to worker: it has no NAT.
	out := e.mustRun(nil, "detect", "--local", local)
	var d struct {
		Functions []struct{ Name string }
		Skipped   []struct{ Function, Reason, Message string }
		Tunnels   []struct{ Public, Server string }
		Patches   []struct {
			Function string
			Changes  []struct{ Env, After string }
		}
	}
	mustDecode(t, out, &d)
	if len(d.Skipped) != 1 || d.Skipped[0].Function != "worker" || !strings.Contains(d.Skipped[0].Message, "without a NAT gateway") {
		t.Errorf("detect without --tunnel-host: skipped %+v, want worker without NAT", d.Skipped)
	}

	// With the server's private address: worker is kept, api (outside any VPC) cannot reach it. One DescribeVpcs,
	// one DescribeSecurityGroups, no route table; worker's groups allow the tunnel ports, so no warning.
	vpcCalls, routeCalls := e.sim.Operations("DescribeVpcs"), e.sim.Operations("DescribeRouteTables")
	detected, stderr, err := e.run(nil, "detect", "--local", local, "--tunnel-host", private)
	if err != nil {
		t.Fatalf("detect --tunnel-host %s: %v\n%s", private, err, stderr)
	}
	d.Skipped = nil
	mustDecode(t, detected, &d)
	if len(d.Functions) != 1 || d.Functions[0].Name != "worker" || len(d.Skipped) != 1 || d.Skipped[0].Function != "api" ||
		d.Skipped[0].Reason != "vpc-no-nat" || !strings.Contains(d.Skipped[0].Message, "is not attached to a VPC: it cannot reach the tunnel host "+private) {
		t.Fatalf("detect --tunnel-host %s: functions %+v, skipped %+v; want worker kept, api skipped", private, d.Functions, d.Skipped)
	}
	if strings.Contains(stderr, "security group") {
		t.Errorf("detect warned about security groups that allow the tunnel ports:\n%s", stderr)
	}
	if v, r := e.sim.Operations("DescribeVpcs")-vpcCalls, e.sim.Operations("DescribeRouteTables")-routeCalls; v != 1 || r != 0 || e.sim.Operations("DescribeSecurityGroups") != 1 {
		t.Errorf("detect --tunnel-host: %d DescribeVpcs, %d DescribeRouteTables, %d DescribeSecurityGroups; want 1, 0, 1",
			v, r, e.sim.Operations("DescribeSecurityGroups"))
	}

	// tunnel open dials the server on loopback; the document's tunnel names the private address as public.
	e.extraEnv = []string{envTunnelHost + "=" + private}
	opened, closeTunnels := e.holdTunnels(detected)
	mustDecode(t, opened, &d)
	if len(d.Tunnels) != 1 || !strings.HasPrefix(d.Tunnels[0].Public, private+":") || d.Tunnels[0].Server != boreSrv.Addr().String() {
		t.Fatalf("tunnels %+v: want public %s:PORT, server %s", d.Tunnels, private, boreSrv.Addr())
	}
	public := d.Tunnels[0].Public
	patched := e.mustRun(opened, "env", "patch")
	mustDecode(t, patched, &d)
	if len(d.Patches) != 1 || d.Patches[0].Function != "worker" || len(d.Patches[0].Changes) != 1 ||
		!strings.Contains(d.Patches[0].Changes[0].After, "@"+public+"/") {
		t.Fatalf("patches %+v: want worker's %s at %s", d.Patches, variable, public)
	}
	if env, _ := e.sim.Env("api"); !bytes.Equal(awssim.CompactJSON(env), awssim.CompactJSON(cloudEnv)) {
		t.Errorf("api was changed: %v", env)
	}

	// Inside the "VPC": worker's code, with the variables Lambda gives it now, reaches the database through the
	// server's private address only. The dialled address means nothing there.
	during, _ := e.sim.Env("worker")
	before := boreSrv.Stats().ConnectionsForwarded
	resp, err := ns.cloudside(t, "worker", "postgres", variable, during)
	if err != nil {
		t.Fatalf("from the namespace, worker patched to %v: %v", during, err)
	}
	var r cloudside.Response
	mustDecode(t, resp, &r)
	if r.Value != "hello from worker" {
		t.Errorf("worker read back %q", r.Value)
	}
	for _, addr := range r.Dialed {
		if ap, err := netip.ParseAddrPort(addr); err != nil || ap.Addr() != ns.hostIP {
			t.Errorf("worker dialed %s, want only the server's private %s", addr, ns.hostIP)
		}
	}
	if boreSrv.Stats().ConnectionsForwarded <= before {
		t.Error("the bore server's forwarded counter did not rise")
	}
	t.Logf("from the namespace, worker: %s (%s) through %v", r.Driver, r.Server, r.Dialed)
	dialled := map[string]string{variable: strings.Replace(during[variable], public, "127.0.0.1:"+strings.TrimPrefix(public, private+":"), 1)}
	if _, err := ns.cloudside(t, "worker", "postgres", variable, dialled); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("from the namespace, the address this machine dials: %v; want connection refused", err)
	}

	closeTunnels()
	restored := e.mustRun(patched, "env", "restore")
	if !bytes.Contains(restored, []byte(`"state": "restored"`)) {
		t.Errorf("env restore printed %s", restored)
	}
	for _, name := range []string{"worker", "api"} {
		if env, _ := e.sim.Env(name); !bytes.Equal(awssim.CompactJSON(env), awssim.CompactJSON(cloudEnv)) {
			t.Errorf("%s after restore: %s", name, awssim.CompactJSON(env))
		}
	}
}

func mustDecode(t *testing.T, data []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("decoding %s: %v", data, err)
	}
}
