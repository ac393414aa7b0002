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
	"sync/atomic"
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

func clientsFor(endpoint string) detect.Clients {
	return clientsCounting(endpoint, new(atomic.Int32))
}

// clientsCounting counts in retries the requests the SDK sends again: a response cut short by the transport
// (seen about once in a few hundred runs on loopback, "use of closed network connection" while reading a body) is
// retried, and an exact count of API calls must allow for it.
func clientsCounting(endpoint string, retries *atomic.Int32) detect.Clients {
	return detect.NewClients(aws.Config{
		Region:       "eu-west-1",
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDDETECT", "secret", ""),
		BaseEndpoint: aws.String(endpoint),
		Retryer: func() aws.Retryer {
			return countingRetryer{RetryerV2: retry.NewStandard(func(o *retry.StandardOptions) {
				o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return time.Millisecond, nil })
				o.RateLimiter = ratelimit.None
			}), retries: retries}
		},
	})
}

type countingRetryer struct {
	aws.RetryerV2
	retries *atomic.Int32
}

func (r countingRetryer) RetryDelay(attempt int, err error) (time.Duration, error) {
	r.retries.Add(1)
	return r.RetryerV2.RetryDelay(attempt, err)
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
	var retries atomic.Int32
	res, err := detect.Run(ctxT(t), clientsCounting(sim.URL(), &retries), detect.Options{Region: "eu-west-1",
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
	total := 0
	for op, want := range map[string]int{"ListFunctions": 3, "GetFunctionConfiguration": 0, "GetFunction": 0,
		"DescribeRouteTables": 2, "ListStackResources": 0} {
		got := sim.Calls(op)
		total += got
		if got < want || got > want+int(retries.Load()) {
			t.Errorf("%s: %d calls, want %d (%d retried)", op, got, want, retries.Load())
		}
	}
	if total != 5+int(retries.Load()) {
		t.Errorf("%d calls in all, want 5 and %d retried", total, retries.Load())
	}

	// The stack's 274 resources come in 3 pages; only its functions are kept, read from the listing.
	retries.Store(0)
	before := sim.Calls("ListStackResources")
	res, err = detect.Run(ctxT(t), clientsCounting(sim.URL(), &retries), detect.Options{Region: "eu-west-1",
		Resources: []doc.Resource{db}, Scope: detect.Scope{Stack: "big", Prefix: "fn-00"}, VPC: detect.VPCAllow})
	if err != nil {
		t.Fatal(err)
	}
	if res.Scanned != 10 || len(res.Functions) != 4 { // fn-000..fn-009, bound: 0, 3, 6, 9
		t.Errorf("stack scope: scanned %d, found %d; want 10, 4", res.Scanned, len(res.Functions))
	}
	if got := sim.Calls("ListStackResources") - before; got != 3+int(retries.Load()) {
		t.Errorf("ListStackResources: %d calls, want 3 and %d retried", got, retries.Load())
	}
}

// deniedEC2 answers DescribeRouteTables as EC2 does for a caller without ec2:DescribeRouteTables, and passes
// every other request to the emulator.
func deniedEC2(t *testing.T, sim *awssim.Server) string {
	target, err := url.Parse(sim.URL())
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		if r.Method == http.MethodPost && strings.Contains(string(body), "Action=DescribeRouteTables") {
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
	res, err := detect.Run(ctxT(t), clientsFor(deniedEC2(t, sim)), detect.Options{Region: "eu-west-1", Resources: []doc.Resource{db}})
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
	res, err = detect.Run(ctxT(t), clientsFor(deniedEC2(t, sim)), detect.Options{Region: "eu-west-1", Resources: []doc.Resource{db}, VPC: detect.VPCAllow})
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
