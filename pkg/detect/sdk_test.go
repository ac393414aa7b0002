package detect_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/stptunnel/stptunnel/pkg/awssim"
	"github.com/stptunnel/stptunnel/pkg/connstr"
	"github.com/stptunnel/stptunnel/pkg/detect"
	"github.com/stptunnel/stptunnel/pkg/doc"
)

// These tests drive detect through the real SDK clients against the emulator.

var db = doc.Resource{Name: "postgresDb", Type: "postgres", URL: "postgres://app:pw@localhost:5432/app", Address: "localhost:5432"}

func newSim(t *testing.T, seed awssim.Seed) *awssim.Server {
	t.Helper()
	s, err := awssim.New(awssim.Options{Region: "eu-west-1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	if err := s.Apply(seed); err != nil {
		t.Fatal(err)
	}
	return s
}

// clientsFor makes the SDK clients for the emulator. The SDK may send a request again by itself (a response cut
// short by the transport, "use of closed network connection" while reading a body: a few in a hundred under -race
// on a loaded machine), so exact call counts use awssim's Operations, which leaves retries out.
func clientsFor(endpoint string) detect.Clients {
	return detect.NewClients(aws.Config{
		Region:       "eu-west-1",
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDDETECT", "secret", ""),
		BaseEndpoint: aws.String(endpoint),
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return time.Millisecond, nil })
				o.RateLimiter = ratelimit.None
			})
		},
	})
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// bigRegion has n functions: every third bound by convention; of the bound ones every other in a VPC, over
// many subnets, half of them served by the main table (with NAT), half by explicit tables (with NAT or without).
func bigRegion(n int) awssim.Seed {
	seed := awssim.Seed{Region: "eu-west-1"}
	seed.RouteTables = append(seed.RouteTables, awssim.RouteTable{ID: "rtb-main", VpcID: "vpc-1", Main: true,
		Routes: []awssim.Route{{DestinationCidrBlock: "0.0.0.0/0", NatGatewayID: "nat-1"}}})
	stack := awssim.Stack{}
	for i := range n {
		name := fmt.Sprintf("fn-%03d", i)
		f := awssim.Function{Name: name, Env: map[string]string{"QUEUE": "jobs"}}
		if i%3 == 0 {
			f.Env["STP_POSTGRES_DB_CONNECTION_STRING"] = db.URL
			if i%2 == 0 {
				subnet := fmt.Sprintf("subnet-%03d", i)
				seed.Subnets = append(seed.Subnets, awssim.Subnet{ID: subnet, VpcID: "vpc-1"})
				f.VPC = &awssim.VPCConfig{SubnetIDs: []string{subnet}, VpcID: "vpc-1"}
				if i%4 == 0 {
					target := awssim.Route{DestinationCidrBlock: "0.0.0.0/0", NatGatewayID: "nat-1"}
					if i%8 == 0 {
						target = awssim.Route{DestinationCidrBlock: "0.0.0.0/0", GatewayID: "igw-1"}
					}
					seed.RouteTables = append(seed.RouteTables, awssim.RouteTable{ID: "rtb-" + subnet, VpcID: "vpc-1",
						Associations: []string{subnet}, Routes: []awssim.Route{target}})
				}
			}
		}
		seed.Functions = append(seed.Functions, f)
		stack.Resources = append(stack.Resources,
			awssim.StackResource{LogicalID: fmt.Sprintf("Fn%d", i), PhysicalID: name, Type: "AWS::Lambda::Function"},
			awssim.StackResource{LogicalID: fmt.Sprintf("Role%d", i), PhysicalID: name + "-role", Type: "AWS::IAM::Role"})
	}
	seed.Stacks = map[string]awssim.Stack{"big": stack}
	return seed
}

func TestRunPaginatesAndBatches(t *testing.T) {
	const n = 137
	sim := newSim(t, bigRegion(n))
	res, err := detect.Run(ctxT(t), clientsFor(sim.URL()), detect.Options{Region: "eu-west-1",
		Resources: []doc.Resource{db}, Public: connstr.HostPort{Host: "bore.pub", Port: 65535}})
	if err != nil {
		t.Fatal(err)
	}
	bound, noNAT := 0, 0
	for i := 0; i < n; i += 3 {
		bound++
		if i%8 == 0 && i%2 == 0 {
			noNAT++
		}
	}
	if res.Scanned != n || len(res.Functions) != bound-noNAT || len(res.Skipped) != noNAT {
		t.Errorf("scanned %d, found %d, skipped %d; want %d, %d, %d", res.Scanned, len(res.Functions), len(res.Skipped), n, bound-noNAT, noNAT)
	}
	for _, s := range res.Skipped {
		if s.Reason != doc.ReasonVPCNoNAT {
			t.Errorf("skip %+v: want %s", s, doc.ReasonVPCNoNAT)
		}
	}
	// 137 functions: 3 pages of 50; the route tables of the 23 VPC functions' subnets in 2 calls (explicit
	// associations, then the main table), and nothing per function.
	for op, want := range map[string]int{"ListFunctions": 3, "GetFunctionConfiguration": 0, "GetFunction": 0,
		"DescribeRouteTables": 2, "ListStackResources": 0} {
		if got := sim.Operations(op); got != want {
			t.Errorf("%s: %d calls, want %d", op, got, want)
		}
	}

	// The stack's 274 resources come in 3 pages; only its functions are kept, read from the listing.
	res, err = detect.Run(ctxT(t), clientsFor(sim.URL()), detect.Options{Region: "eu-west-1",
		Resources: []doc.Resource{db}, Scope: detect.Scope{Stack: "big", Prefix: "fn-00"}, VPC: detect.VPCAllow})
	if err != nil {
		t.Fatal(err)
	}
	if res.Scanned != 10 || len(res.Functions) != 4 { // fn-000..fn-009, bound: 0, 3, 6, 9
		t.Errorf("stack scope: scanned %d, found %d; want 10, 4", res.Scanned, len(res.Functions))
	}
	if got := sim.Operations("ListStackResources"); got != 3 {
		t.Errorf("ListStackResources: %d calls, want 3", got)
	}
}

// deniedEC2 answers action as EC2 does for a caller without its permission, and passes every other request to
// the emulator.
func deniedEC2(t *testing.T, sim *awssim.Server, action string) string {
	target, err := url.Parse(sim.URL())
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		if r.Method == http.MethodPost && strings.Contains(string(body), "Action="+action+"&") {
			w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>UnauthorizedOperation</Code>`+
				`<Message>You are not authorized to perform this operation.</Message></Error></Errors><RequestID>1</RequestID></Response>`)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestRunRouteTablesDenied(t *testing.T) {
	sim := newSim(t, awssim.Seed{
		Functions: []awssim.Function{
			{Name: "api", Env: map[string]string{"DB": db.URL}},
			{Name: "worker", Env: map[string]string{"DB": db.URL}, VPC: &awssim.VPCConfig{SubnetIDs: []string{"subnet-1"}, VpcID: "vpc-1"}},
		},
		Subnets: []awssim.Subnet{{ID: "subnet-1", VpcID: "vpc-1"}},
	})
	res, err := detect.Run(ctxT(t), clientsFor(deniedEC2(t, sim, "DescribeRouteTables")), detect.Options{Region: "eu-west-1", Resources: []doc.Resource{db}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Functions) != 1 || res.Functions[0].Name != "api" {
		t.Errorf("functions %+v, want api only", res.Functions)
	}
	if len(res.Skipped) != 1 || res.Skipped[0].Reason != doc.ReasonVPCNoNAT ||
		!strings.Contains(res.Skipped[0].Message, "UnauthorizedOperation") || !strings.Contains(res.Skipped[0].Message, "--vpc allow") {
		t.Errorf("skipped %+v, want worker vpc-no-nat naming UnauthorizedOperation and --vpc allow", res.Skipped)
	}

	// --vpc allow needs no route table.
	res, err = detect.Run(ctxT(t), clientsFor(deniedEC2(t, sim, "DescribeRouteTables")), detect.Options{Region: "eu-west-1", Resources: []doc.Resource{db}, VPC: detect.VPCAllow})
	if err != nil || len(res.Functions) != 2 || len(res.Skipped) != 0 {
		t.Errorf("--vpc allow: %+v, %v; want both functions", res, err)
	}
}

func TestRunNamedFunctions(t *testing.T) {
	sim := newSim(t, awssim.Seed{Functions: []awssim.Function{
		{Name: "api", Env: map[string]string{"STP_POSTGRES_DB_HOST": "localhost"}},
		{Name: "locked", Env: map[string]string{"DB": db.URL}, KMSError: "KMSAccessDeniedException"},
	}})
	res, err := detect.Run(ctxT(t), clientsFor(sim.URL()), detect.Options{Region: "eu-west-1", Resources: []doc.Resource{db},
		Scope: detect.Scope{Functions: []string{"gone", "arn:aws:lambda:eu-west-1:123456789012:function:api", "locked"}}})
	if err != nil {
		t.Fatal(err)
	}
	want := []doc.Skip{
		{Function: "gone", Reason: doc.ReasonNotFound, Message: "is not deployed in eu-west-1: deploy it first, then run detect again"},
		{Function: "locked", Reason: doc.ReasonNoAccess, Message: "cannot read its environment variables (KMSAccessDeniedException): " +
			"grant kms:Decrypt on its key to check it; it is never written"},
	}
	if fmt.Sprint(res.Skipped) != fmt.Sprint(want) {
		t.Errorf("skipped\n%+v\nwant\n%+v", res.Skipped, want)
	}
	if len(res.Functions) != 1 || res.Functions[0].Name != "api" || res.Scanned != 2 {
		t.Errorf("functions %+v scanned %d, want api of 2", res.Functions, res.Scanned)
	}
	if got := sim.Calls("GetFunctionConfiguration"); got != 3 {
		t.Errorf("GetFunctionConfiguration: %d calls, want 3", got)
	}

	// Any other error ends the run.
	sim.SetFault("GetFunctionConfiguration", awssim.Fault{Kind: awssim.FaultConflict, Rate: 1})
	if _, err := detect.Run(ctxT(t), clientsFor(sim.URL()), detect.Options{Resources: []doc.Resource{db},
		Scope: detect.Scope{Functions: []string{"api"}}}); err == nil || !strings.Contains(err.Error(), "reading the configuration of api") {
		t.Errorf("err = %v, want one naming the function", err)
	}
}

// deployedVPC is a deployed stack whose database variables name the cloud database: api outside any VPC, worker
// in vpc-1 (10.0.0.0/16, plus 100.64.0.0/16) whose subnets route 0.0.0.0/0 to an internet gateway only, jobs in
// vpc-2 behind a NAT gateway. A bore server inside vpc-1 has the private address 10.0.1.5.
func deployedVPC() awssim.Seed {
	cloud := "postgres://admin:cloudpw@db.cluster-x.eu-west-1.rds.amazonaws.com:5432/app"
	env := func() map[string]string {
		return map[string]string{"STP_POSTGRES_DB_CONNECTION_STRING": cloud, "QUEUE": "jobs"}
	}
	return awssim.Seed{
		Functions: []awssim.Function{
			{Name: "api", Env: env()},
			{Name: "worker", Env: env(), VPC: &awssim.VPCConfig{SubnetIDs: []string{"subnet-a", "subnet-b"}, SecurityGroupIDs: []string{"sg-worker", "sg-db-client"}}},
			{Name: "jobs", Env: env(), VPC: &awssim.VPCConfig{SubnetIDs: []string{"subnet-c"}, SecurityGroupIDs: []string{"sg-jobs"}}},
		},
		Subnets: []awssim.Subnet{{ID: "subnet-a", VpcID: "vpc-1"}, {ID: "subnet-b", VpcID: "vpc-1"}, {ID: "subnet-c", VpcID: "vpc-2"}},
		RouteTables: []awssim.RouteTable{
			{ID: "rtb-1", VpcID: "vpc-1", Main: true, Routes: []awssim.Route{{DestinationCidrBlock: "10.0.0.0/16", GatewayID: "local"},
				{DestinationCidrBlock: "0.0.0.0/0", GatewayID: "igw-1"}}},
			{ID: "rtb-2", VpcID: "vpc-2", Main: true, Routes: []awssim.Route{{DestinationCidrBlock: "0.0.0.0/0", NatGatewayID: "nat-2"}}},
		},
		VPCs: []awssim.VPC{
			{ID: "vpc-1", CidrBlock: "10.0.0.0/16", AssociatedCidrBlocks: []string{"100.64.0.0/16"}},
			{ID: "vpc-2", CidrBlock: "10.1.0.0/16"},
		},
		SecurityGroups: []awssim.SecurityGroup{
			{ID: "sg-worker", Name: "worker", VpcID: "vpc-1", Egress: []awssim.Permission{{Protocol: "tcp", FromPort: 443, ToPort: 443, CIDRs: []string{"0.0.0.0/0"}}}},
			{ID: "sg-db-client", Name: "db-client", VpcID: "vpc-1", Egress: []awssim.Permission{{Protocol: "tcp", FromPort: 5432, ToPort: 5432, CIDRs: []string{"10.0.0.0/16"}}}},
			{ID: "sg-jobs", VpcID: "vpc-2"},
		},
	}
}

func names(fs []doc.Function) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Name)
	}
	return out
}

func TestRunTunnelHostInsideVPC(t *testing.T) {
	tests := []struct {
		name     string
		host     string
		kept     []string
		skipped  map[string]string // function → part of its message
		calls    map[string]int
		warnings []string
	}{
		{name: "public server: worker has no NAT", host: "bore.example.com", kept: []string{"api", "jobs"},
			skipped: map[string]string{"worker": "runs in a VPC without a NAT gateway: it cannot reach the tunnel server (use --vpc allow to patch it anyway); no 0.0.0.0/0 route through NAT from subnet-a, subnet-b"},
			calls:   map[string]int{"DescribeRouteTables": 2, "DescribeVpcs": 0, "DescribeSecurityGroups": 0}},
		{name: "public server by address: the same", host: "54.170.1.2", kept: []string{"api", "jobs"},
			skipped: map[string]string{"worker": "no 0.0.0.0/0 route through NAT from subnet-a, subnet-b"},
			calls:   map[string]int{"DescribeRouteTables": 2, "DescribeVpcs": 0, "DescribeSecurityGroups": 0}},
		{name: "server inside vpc-1: worker needs no NAT, the others cannot reach it", host: "10.0.1.5", kept: []string{"worker"},
			skipped: map[string]string{
				"api":  "is not attached to a VPC: it cannot reach the tunnel host 10.0.1.5, a private address (use --vpc allow to patch it anyway)",
				"jobs": "runs in VPC vpc-2, whose CIDR blocks (10.1.0.0/16) do not hold the tunnel host 10.0.1.5: a private address is reached only from its own VPC (use --vpc allow to patch it anyway if peering or a transit gateway routes to it)",
			},
			calls: map[string]int{"DescribeRouteTables": 0, "DescribeVpcs": 1, "DescribeSecurityGroups": 1},
			warnings: []string{"worker: its security groups sg-worker (worker), sg-db-client (db-client) allow TCP to the tunnel host 10.0.1.5 only on ports 443, 5432, " +
				"but the bore server hands out tunnel ports in 1024-65535: add an egress rule for TCP 1024-65535 to 10.0.1.5, or its connections to the tunnel will time out"}},
		{name: "server in vpc-1's secondary block", host: "100.64.7.8", kept: []string{"worker"},
			skipped: map[string]string{"api": "a private address", "jobs": "do not hold the tunnel host 100.64.7.8"},
			calls:   map[string]int{"DescribeRouteTables": 0, "DescribeVpcs": 1, "DescribeSecurityGroups": 1},
			// 443 to anywhere; 5432 goes to 10.0.0.0/16 only.
			warnings: []string{"worker: its security groups sg-worker (worker), sg-db-client (db-client) allow TCP to the tunnel host 100.64.7.8 only on ports 443, " +
				"but the bore server hands out tunnel ports in 1024-65535: add an egress rule for TCP 1024-65535 to 100.64.7.8, or its connections to the tunnel will time out"}},
		{name: "private server outside every VPC: no one reaches it", host: "10.9.0.5", kept: nil,
			skipped: map[string]string{"api": "a private address", "worker": "runs in VPC vpc-1, whose CIDR blocks (10.0.0.0/16, 100.64.0.0/16) do not hold the tunnel host 10.9.0.5",
				"jobs": "(10.1.0.0/16) do not hold the tunnel host 10.9.0.5"},
			calls: map[string]int{"DescribeRouteTables": 0, "DescribeVpcs": 1, "DescribeSecurityGroups": 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim := newSim(t, deployedVPC())
			res, err := detect.Run(ctxT(t), clientsFor(sim.URL()), detect.Options{Region: "eu-west-1", Resources: []doc.Resource{db},
				Public: connstr.HostPort{Host: tt.host, Port: 65535}})
			if err != nil {
				t.Fatal(err)
			}
			if got := names(res.Functions); fmt.Sprint(got) != fmt.Sprint(tt.kept) {
				t.Errorf("kept %v, want %v", got, tt.kept)
			}
			if len(res.Skipped) != len(tt.skipped) {
				t.Errorf("skipped %+v, want %d", res.Skipped, len(tt.skipped))
			}
			for _, s := range res.Skipped {
				if want, ok := tt.skipped[s.Function]; !ok || s.Reason != doc.ReasonVPCNoNAT || !strings.Contains(s.Message, want) {
					t.Errorf("skip %+v: want vpc-no-nat with %q", s, want)
				}
			}
			if fmt.Sprint(res.Warnings) != fmt.Sprint(tt.warnings) {
				t.Errorf("warnings\n%q\nwant\n%q", res.Warnings, tt.warnings)
			}
			for op, want := range tt.calls {
				if got := sim.Operations(op); got != want {
					t.Errorf("%s: %d calls, want %d", op, got, want)
				}
			}
		})
	}
}

func TestRunTunnelHostSecurityGroups(t *testing.T) {
	seed := deployedVPC()
	// The deployment recipe's rule: the tunnel range to the VPC, in one of the function's two groups.
	seed.SecurityGroups[1].Egress = append(seed.SecurityGroups[1].Egress, awssim.Permission{Protocol: "tcp", FromPort: 1024, ToPort: 65535, CIDRs: []string{"10.0.0.0/16"}})
	sim := newSim(t, seed)
	opts := detect.Options{Region: "eu-west-1", Resources: []doc.Resource{db}, Public: connstr.HostPort{Host: "10.0.1.5", Port: 65535}}
	res, err := detect.Run(ctxT(t), clientsFor(sim.URL()), opts)
	if err != nil || len(res.Warnings) != 0 || fmt.Sprint(names(res.Functions)) != "[worker]" {
		t.Errorf("with the tunnel range allowed: %v, warnings %q, kept %v; want worker and no warning", err, res.Warnings, names(res.Functions))
	}

	// A server started with a narrower range needs only that range.
	sim.PutSecurityGroup(awssim.SecurityGroup{ID: "sg-db-client", VpcID: "vpc-1", Egress: []awssim.Permission{
		{Protocol: "tcp", FromPort: 40000, ToPort: 40999, CIDRs: []string{"10.0.1.5/32"}}}})
	opts.TunnelPorts = detect.PortRange{Min: 40000, Max: 40999}
	if res, err = detect.Run(ctxT(t), clientsFor(sim.URL()), opts); err != nil || len(res.Warnings) != 0 {
		t.Errorf("range 40000-40999 allowed: %v, warnings %q", err, res.Warnings)
	}
	opts.TunnelPorts = detect.PortRange{}
	if res, err = detect.Run(ctxT(t), clientsFor(sim.URL()), opts); err != nil || len(res.Warnings) != 1 ||
		!strings.Contains(res.Warnings[0], "only on ports 443, 40000-40999") {
		t.Errorf("default range with 40000-40999 allowed: %v, warnings %q", err, res.Warnings)
	}

	// A group the function names that no longer exists is left out; with none left, nothing to check.
	sim.PutFunction(awssim.Function{Name: "worker", Env: map[string]string{"STP_POSTGRES_DB_HOST": "db.internal"},
		VPC: &awssim.VPCConfig{SubnetIDs: []string{"subnet-a"}, SecurityGroupIDs: []string{"sg-deleted"}}})
	if res, err = detect.Run(ctxT(t), clientsFor(sim.URL()), opts); err != nil || len(res.Warnings) != 0 || fmt.Sprint(names(res.Functions)) != "[worker]" {
		t.Errorf("deleted group: %v, warnings %q, kept %v", err, res.Warnings, names(res.Functions))
	}
}

// TestRunTunnelHostBatches: however many functions, one DescribeVpcs and one DescribeSecurityGroups call (per 200
// VPCs or groups, per page), and no route table.
func TestRunTunnelHostBatches(t *testing.T) {
	const n = 137
	seed := bigRegion(n)
	seed.VPCs = []awssim.VPC{{ID: "vpc-1", CidrBlock: "10.0.0.0/16"}}
	for i := range n {
		if f := &seed.Functions[i]; f.VPC != nil {
			sg := fmt.Sprintf("sg-%03d", i%5)
			f.VPC.SecurityGroupIDs = []string{sg}
			seed.SecurityGroups = append(seed.SecurityGroups, awssim.SecurityGroup{ID: sg, VpcID: "vpc-1"})
		}
	}
	sim := newSim(t, seed)
	res, err := detect.Run(ctxT(t), clientsFor(sim.URL()), detect.Options{Region: "eu-west-1", Resources: []doc.Resource{db},
		Public: connstr.HostPort{Host: "10.0.200.9", Port: 65535}})
	if err != nil {
		t.Fatal(err)
	}
	inVPC := 0
	for i := 0; i < n; i += 6 {
		inVPC++
	}
	if len(res.Functions) != inVPC || len(res.Skipped) != (n+2)/3-inVPC || len(res.Warnings) != 0 {
		t.Errorf("kept %d, skipped %d, warnings %q; want %d kept (every VPC function, NAT or not), the %d others skipped",
			len(res.Functions), len(res.Skipped), res.Warnings, inVPC, (n+2)/3-inVPC)
	}
	for op, want := range map[string]int{"ListFunctions": 3, "DescribeVpcs": 1, "DescribeSecurityGroups": 1, "DescribeRouteTables": 0} {
		if got := sim.Operations(op); got != want {
			t.Errorf("%s: %d calls, want %d", op, got, want)
		}
	}

	// 250 functions, each in its own VPC with its own group: 200 filter values per call, so two of each.
	seed = awssim.Seed{Region: "eu-west-1"}
	for i := range 250 {
		vpc, sg, subnet := fmt.Sprintf("vpc-%03d", i), fmt.Sprintf("sg-%03d", i), fmt.Sprintf("subnet-%03d", i)
		seed.Functions = append(seed.Functions, awssim.Function{Name: fmt.Sprintf("fn-%03d", i),
			Env: map[string]string{"STP_POSTGRES_DB_HOST": "db.internal"}, VPC: &awssim.VPCConfig{SubnetIDs: []string{subnet}, SecurityGroupIDs: []string{sg}, VpcID: vpc}})
		seed.VPCs = append(seed.VPCs, awssim.VPC{ID: vpc, CidrBlock: "10.0.0.0/16"})
		seed.SecurityGroups = append(seed.SecurityGroups, awssim.SecurityGroup{ID: sg, VpcID: vpc})
	}
	sim = newSim(t, seed)
	res, err = detect.Run(ctxT(t), clientsFor(sim.URL()), detect.Options{Region: "eu-west-1", Resources: []doc.Resource{db},
		Public: connstr.HostPort{Host: "10.0.200.9", Port: 65535}})
	if err != nil || len(res.Functions) != 250 || len(res.Warnings) != 0 {
		t.Fatalf("250 VPCs: %v, kept %d, warnings %q", err, len(res.Functions), res.Warnings)
	}
	for op, want := range map[string]int{"ListFunctions": 5, "DescribeVpcs": 2, "DescribeSecurityGroups": 2, "DescribeRouteTables": 0} {
		if got := sim.Operations(op); got != want {
			t.Errorf("250 VPCs: %s: %d calls, want %d", op, got, want)
		}
	}
}

func TestRunTunnelHostDenied(t *testing.T) {
	sim := newSim(t, deployedVPC())
	opts := detect.Options{Region: "eu-west-1", Resources: []doc.Resource{db}, Public: connstr.HostPort{Host: "10.0.1.5", Port: 65535}}
	res, err := detect.Run(ctxT(t), clientsFor(deniedEC2(t, sim, "DescribeVpcs")), opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Functions) != 0 || len(res.Skipped) != 3 {
		t.Fatalf("kept %v, skipped %+v; want all three skipped", names(res.Functions), res.Skipped)
	}
	for _, s := range res.Skipped {
		if s.Function != "api" && !strings.Contains(s.Message, "its CIDR blocks cannot be read (UnauthorizedOperation on ec2:DescribeVpcs): use --vpc allow") {
			t.Errorf("skip %+v: want one naming ec2:DescribeVpcs and --vpc allow", s)
		}
	}

	res, err = detect.Run(ctxT(t), clientsFor(deniedEC2(t, sim, "DescribeSecurityGroups")), opts)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"the security groups of worker cannot be read (UnauthorizedOperation on ec2:DescribeSecurityGroups): " +
		"whether they allow TCP to the tunnel host 10.0.1.5 on ports 1024-65535 was not checked"}
	if fmt.Sprint(names(res.Functions)) != "[worker]" || fmt.Sprint(res.Warnings) != fmt.Sprint(want) {
		t.Errorf("kept %v, warnings %q; want worker kept and %q", names(res.Functions), res.Warnings, want)
	}

	// Any other failure ends the run.
	sim.SetFault("DescribeVpcs", awssim.Fault{Kind: awssim.FaultServerError, Rate: 1})
	if _, err := detect.Run(ctxT(t), clientsFor(sim.URL()), opts); err == nil || !strings.Contains(err.Error(), "reading VPCs (ec2:DescribeVpcs)") {
		t.Errorf("err = %v, want one naming ec2:DescribeVpcs", err)
	}
}
