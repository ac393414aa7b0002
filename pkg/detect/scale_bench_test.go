package detect

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/stptunnel/stptunnel/pkg/awssim"
	"github.com/stptunnel/stptunnel/pkg/bore"
	"github.com/stptunnel/stptunnel/pkg/bore/boretest"
	"github.com/stptunnel/stptunnel/pkg/connstr"
	"github.com/stptunnel/stptunnel/pkg/doc"
	"github.com/stptunnel/stptunnel/pkg/lambdaenv"
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
	if got := sim.Operations("DescribeRouteTables"); got != 2 {
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

// Start-up: from `stptunnel dev` start to "Ready" with 10 functions bound (50 ms per API call, 1 s before an
// update is live), next to the same work done in-process by the packages dev is made of.

const readyFunctions = 10

// readyEnv is the API, tunnel server and local service a start-up benchmark runs against.
type readyEnv struct {
	sim    *awssim.Server
	server *bore.Server
	local  *net.TCPListener
	url    string // the local resource's URL
}

// newReadyEnv starts a fresh emulator holding readyFunctions bound functions and 40 unrelated ones, a bore
// server on loopback and a local service for the tunnel to reach.
func newReadyEnv(b *testing.B) *readyEnv {
	b.Helper()
	local, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { local.Close() })
	go func() {
		for {
			c, err := local.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	url := fmt.Sprintf("postgres://app:s3cret@localhost:%d/app", local.Addr().(*net.TCPAddr).Port)
	sim, err := awssim.New(awssim.Options{Region: "eu-west-1", UpdateDelay: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(sim.Close)
	for i := range 50 {
		env := map[string]string{"LOG_LEVEL": "info"}
		if i < readyFunctions {
			env["STP_POSTGRES_DB_CONNECTION_STRING"] = url
		}
		sim.PutFunction(awssim.Function{Name: fmt.Sprintf("svc-%02d", i), Env: env})
	}
	sim.SetFault("*", awssim.Fault{Latency: 50 * time.Millisecond})
	server := boretest.Start(b, bore.ServerConfig{Logger: slog.New(slog.DiscardHandler)})
	return &readyEnv{sim: sim, server: server, local: local, url: url}
}

// BenchmarkReady measures the start of a dev session with 10 bound functions among 50:
//   - InProcess: detect.Run, a bore client started, lambdaenv Patch with Wait: the floor, no process start;
//   - Dev: the stptunnel binary (STPTUNNEL_BIN, else built from ./cmd/stptunnel) running `dev`, from its start to
//     its "Ready" line on stderr. Also reported: tunnel-s, when its "Starting tunnel" line appeared.
//
// One iteration takes seconds: run with -benchtime=1x or 3x.
func BenchmarkReady(b *testing.B) {
	b.Run("InProcess", func(b *testing.B) {
		var phases readyPhases
		for range b.N {
			b.StopTimer()
			env := newReadyEnv(b)
			b.StartTimer()
			phases.add(readyInProcess(b, env))
		}
		phases.report(b)
	})
	b.Run("Dev", func(b *testing.B) {
		bin := stptunnelBinary(b)
		b.ResetTimer()
		var phases readyPhases
		for range b.N {
			b.StopTimer()
			env := newReadyEnv(b)
			b.StartTimer()
			phases.add(readyDev(b, env, bin))
		}
		phases.report(b)
	})
}

// readyPhases are the times since the start at which detection was done and the tunnel was up.
type readyPhases struct{ detected, tunnelUp time.Duration }

func (p *readyPhases) add(q readyPhases) {
	p.detected += q.detected
	p.tunnelUp += q.tunnelUp
}

func (p readyPhases) report(b *testing.B) {
	b.ReportMetric(p.detected.Seconds()/float64(b.N), "detected-s")
	b.ReportMetric(p.tunnelUp.Seconds()/float64(b.N), "tunnel-s")
}

func readyInProcess(b *testing.B, env *readyEnv) readyPhases {
	ctx := b.Context()
	start := time.Now()
	opts := scaleOptions()
	opts.Resources[0].URL = env.url
	opts.Resources[0].Address = strings.TrimPrefix(strings.TrimSuffix(env.url, "/app"), "postgres://app:s3cret@")
	res, err := Run(ctx, scaleClients(env.sim), opts)
	if err != nil {
		b.Fatal(err)
	}
	if len(res.Functions) != readyFunctions {
		b.Fatalf("detect found %d functions, want %d", len(res.Functions), readyFunctions)
	}
	phases := readyPhases{detected: time.Since(start)}
	client, err := bore.NewClient(bore.ClientConfig{Server: env.server.Addr().String(), LocalHost: "127.0.0.1",
		LocalPort: env.local.Addr().(*net.TCPAddr).Port, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	if err := client.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	phases.tunnelUp = time.Since(start)
	target := lambdaenv.Target{Resource: opts.Resources[0], Public: connstr.HostPort{Host: "127.0.0.1", Port: client.RemotePort()}}
	plans := make([]lambdaenv.Plan, len(res.Functions))
	for i, f := range res.Functions {
		plans[i] = lambdaenv.Plan{Function: f.Name, ARN: f.ARN, Bindings: f.Bindings, Targets: map[string]lambdaenv.Target{"postgresDb": target}}
	}
	journal, err := lambdaenv.OpenJournal(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	lc := lambda.NewFromConfig(aws.Config{Region: "eu-west-1", BaseEndpoint: aws.String(env.sim.URL()),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDAWSSIM", "secret", "")})
	p := &lambdaenv.Patcher{Client: lc, Journal: journal, Wait: true,
		Session: lambdaenv.Session{ID: "benchready01", By: "bench@local", At: "2026-12-02T00:00:00Z"}}
	if _, err := p.Patch(ctx, plans); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	client.Close()
	b.StartTimer()
	return phases
}

// readyDev runs `stptunnel dev` until it says it is ready, then interrupts it (restore and close are not timed)
// and returns when it had found the functions and when the tunnel was up.
func readyDev(b *testing.B, env *readyEnv, bin string) readyPhases {
	dir := b.TempDir()
	cmd := exec.Command(bin, "dev", "--no-color", "--state-dir", filepath.Join(dir, "state"),
		"--local", "postgresDb="+env.url, "--to", env.server.Addr().String())
	cmd.Env = append(os.Environ(), "AWS_ENDPOINT_URL="+env.sim.URL(), "AWS_REGION=eu-west-1", "AWS_PROFILE=",
		"AWS_ACCESS_KEY_ID=AKIDAWSSIM", "AWS_SECRET_ACCESS_KEY=secret", "AWS_SESSION_TOKEN=", "AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE="+filepath.Join(dir, "absent"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "absent"),
		"GITHUB_ACTIONS=", "NO_COLOR=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	var tunnelUp, detected time.Duration
	var lines []string
	ready := false
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		line := sc.Text()
		lines = append(lines, fmt.Sprintf("%6.2fs %s", time.Since(start).Seconds(), line))
		if strings.Contains(line, "Found ") && detected == 0 {
			detected = time.Since(start)
		}
		if strings.Contains(line, "Starting tunnel") && tunnelUp == 0 {
			tunnelUp = time.Since(start)
		}
		if strings.Contains(line, "Ready:") {
			ready = true
			break
		}
	}
	b.StopTimer()
	if !ready {
		_ = cmd.Wait()
		b.Fatalf("stptunnel dev never said Ready:\n%s", strings.Join(lines, "\n"))
	}
	if !strings.Contains(lines[len(lines)-1], fmt.Sprintf("%d functions", readyFunctions)) {
		b.Errorf("ready line %q, want %d functions", lines[len(lines)-1], readyFunctions)
	}
	if os.Getenv("STPTUNNEL_BENCH_VERBOSE") != "" {
		b.Logf("stptunnel dev:\n%s", strings.Join(lines, "\n"))
	}
	go io.Copy(io.Discard, stderr)
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		b.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		b.Errorf("stptunnel dev after SIGINT: %v", err)
	}
	for i := range readyFunctions {
		name := fmt.Sprintf("svc-%02d", i)
		if e, _ := env.sim.Env(name); e["STP_POSTGRES_DB_CONNECTION_STRING"] != env.url {
			b.Errorf("%s not restored after dev ended: %v", name, e)
		}
	}
	b.StartTimer()
	return readyPhases{detected: detected, tunnelUp: tunnelUp}
}

// stptunnelBinary is STPTUNNEL_BIN, or the stptunnel command built once for this run.
func stptunnelBinary(b *testing.B) string {
	if bin := os.Getenv("STPTUNNEL_BIN"); bin != "" {
		return bin
	}
	bin := filepath.Join(b.TempDir(), "stptunnel")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/stptunnel/stptunnel/cmd/stptunnel")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("building stptunnel: %v\n%s", err, out)
	}
	return bin
}
