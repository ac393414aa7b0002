package detect

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/stptunnel/stptunnel/pkg/awssim"
	"github.com/stptunnel/stptunnel/pkg/connstr"
	"github.com/stptunnel/stptunnel/pkg/doc"
)

// Detect at scale: a region of 1,000 functions costs its ListFunctions pages (50 functions each) and nothing per
// function; the VPC check reads the route tables of all VPC functions in one batch.

const (
	scaleFunctions = 1000
	scaleBound     = 200 // every 5th function references postgresDb
	scaleInVPC     = 20  // every 50th: 10 in a private subnet with NAT, 10 in one without
)

// scaleRegion fills sim with scaleFunctions functions: every 5th bound by convention, every 50th of those in a
// VPC, half of them without a NAT route.
func scaleRegion(sim *awssim.Server) error {
	seed := awssim.Seed{
		Subnets: []awssim.Subnet{
			{ID: "subnet-nat", VpcID: "vpc-1"},
			{ID: "subnet-isolated", VpcID: "vpc-1"},
		},
		RouteTables: []awssim.RouteTable{
			{ID: "rtb-main", VpcID: "vpc-1", Main: true,
				Routes: []awssim.Route{{DestinationCidrBlock: "10.0.0.0/16", GatewayID: "local"}}},
			{ID: "rtb-nat", VpcID: "vpc-1", Associations: []string{"subnet-nat"},
				Routes: []awssim.Route{{DestinationCidrBlock: "0.0.0.0/0", NatGatewayID: "nat-1"}}},
		},
	}
	for i := range scaleFunctions {
		f := awssim.Function{Name: fmt.Sprintf("svc-%04d", i), Env: map[string]string{
			"LOG_LEVEL": "info", "QUEUE_URL": fmt.Sprintf("https://sqs.eu-west-1.amazonaws.com/123456789012/q-%d", i),
		}}
		if i%5 == 0 {
			f.Env["STP_POSTGRES_DB_CONNECTION_STRING"] = "postgres://app:s3cret@localhost:5432/app"
		}
		if i%50 == 0 {
			subnet := "subnet-nat"
			if i%100 == 0 {
				subnet = "subnet-isolated"
			}
			f.VPC = &awssim.VPCConfig{SubnetIDs: []string{subnet}}
		}
		seed.Functions = append(seed.Functions, f)
	}
	return sim.Apply(seed)
}

func scaleSim(tb testing.TB, latency time.Duration) *awssim.Server {
	tb.Helper()
	sim, err := awssim.New(awssim.Options{Region: "eu-west-1"})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(sim.Close)
	if err := scaleRegion(sim); err != nil {
		tb.Fatal(err)
	}
	if latency > 0 {
		sim.SetFault("*", awssim.Fault{Latency: latency})
	}
	return sim
}

func scaleClients(sim *awssim.Server) Clients {
	return NewClients(aws.Config{
		Region:       "eu-west-1",
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDAWSSIM", "secret", ""),
		BaseEndpoint: aws.String(sim.URL()),
	})
}

func scaleOptions() Options {
	return Options{
		Region:    "eu-west-1",
		Resources: []doc.Resource{{Name: "postgresDb", Type: "postgres", URL: "postgres://app:s3cret@localhost:5432/app", Address: "localhost:5432"}},
		Public:    connstr.HostPort{Host: "bore.pub", Port: 65535},
	}
}

// perFunctionOps are the calls that would cost one request per function.
var perFunctionOps = []string{"GetFunctionConfiguration", "GetFunction", "UpdateFunctionConfiguration"}

// TestDetectScaleCalls detects over 1,000 functions and asserts the calls: 20 ListFunctions pages, no
// per-function call, and the VPC check in one DescribeRouteTables for the subnets plus one for the main table of
// the subnet without an explicit one.
func TestDetectScaleCalls(t *testing.T) {
	sim := scaleSim(t, 0)
	res, err := Run(t.Context(), scaleClients(sim), scaleOptions())
	if err != nil {
		t.Fatal(err)
	}
	if res.Scanned != scaleFunctions {
		t.Errorf("scanned %d functions, want %d", res.Scanned, scaleFunctions)
	}
	if want := scaleBound - scaleInVPC/2; len(res.Functions) != want {
		t.Errorf("%d functions bound, want %d (the bound ones minus those in the subnet without NAT)", len(res.Functions), want)
	}
	if len(res.Skipped) != scaleInVPC/2 {
		t.Errorf("skipped %d, want %d", len(res.Skipped), scaleInVPC/2)
	}
	for _, s := range res.Skipped {
		if s.Reason != doc.ReasonVPCNoNAT {
			t.Errorf("skip %+v, want reason %s", s, doc.ReasonVPCNoNAT)
		}
	}
	if got, want := sim.Calls("ListFunctions"), scaleFunctions/50; got != want {
		t.Errorf("%d ListFunctions calls for %d functions, want %d (pages of 50)", got, scaleFunctions, want)
	}
	for _, op := range perFunctionOps {
		if got := sim.Calls(op); got != 0 {
			t.Errorf("%d %s calls: detect must not call per function", got, op)
		}
	}
	if got := sim.Calls("DescribeRouteTables"); got != 2 {
		t.Errorf("%d DescribeRouteTables calls, want 2 (the subnets' tables, then the VPC's main table)", got)
	}
	if got := sim.Calls("ListStackResources") + sim.Calls("DescribeSubnets"); got != 0 {
		t.Errorf("%d ListStackResources/DescribeSubnets calls, want 0", got)
	}
}

// BenchmarkDetect detects over 1,000 functions (sub-benchmark n=1000) and over one page of 50 (n=50, the baseline
// of the same run), with 50 ms per API call. Reported: calls/op (all API calls), per-fn-calls/op (calls about one
// function; must be 0).
func BenchmarkDetect(b *testing.B) {
	for _, n := range []int{50, scaleFunctions} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			sim := scaleSim(b, 50*time.Millisecond)
			for i := n; i < scaleFunctions; i++ {
				sim.DeleteFunction(fmt.Sprintf("svc-%04d", i))
			}
			clients, opts := scaleClients(sim), scaleOptions()
			ctx, cancel := context.WithTimeout(b.Context(), 5*time.Minute)
			defer cancel()
			before := totalCalls(sim)
			b.ResetTimer()
			for range b.N {
				res, err := Run(ctx, clients, opts)
				if err != nil {
					b.Fatal(err)
				}
				if res.Scanned != n {
					b.Fatalf("scanned %d, want %d", res.Scanned, n)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(totalCalls(sim)-before)/float64(b.N), "calls/op")
			perFn := 0
			for _, op := range perFunctionOps {
				perFn += sim.Calls(op)
			}
			b.ReportMetric(float64(perFn)/float64(b.N), "per-fn-calls/op")
		})
	}
}

// BenchmarkDetectCPU is BenchmarkDetect without API latency: the client-side cost of listing, binding and
// checking 1,000 functions (decoding the pages dominates).
func BenchmarkDetectCPU(b *testing.B) {
	sim := scaleSim(b, 0)
	clients, opts := scaleClients(sim), scaleOptions()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := Run(b.Context(), clients, opts); err != nil {
			b.Fatal(err)
		}
	}
}

func totalCalls(sim *awssim.Server) int {
	n := 0
	for _, op := range []string{"ListFunctions", "GetFunctionConfiguration", "GetFunction", "UpdateFunctionConfiguration",
		"ListStackResources", "DescribeRouteTables", "DescribeSubnets"} {
		n += sim.Calls(op)
	}
	return n
}
