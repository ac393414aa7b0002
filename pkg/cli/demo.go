package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/urfave/cli/v2"

	"github.com/stptunnel/stptunnel/pkg/awssim"
	"github.com/stptunnel/stptunnel/pkg/bore"
	"github.com/stptunnel/stptunnel/pkg/connstr"
	"github.com/stptunnel/stptunnel/pkg/detect"
	"github.com/stptunnel/stptunnel/pkg/doc"
	"github.com/stptunnel/stptunnel/pkg/lambdaenv"
	"github.com/stptunnel/stptunnel/pkg/session"
	"github.com/stptunnel/stptunnel/pkg/tunnel"
)

// The demo's sample stack: one function bound by Stacktape's convention, one in a VPC without a NAT route, one
// that uses nothing local.
const (
	demoStack     = "demo-app"
	demoAPI       = "demo-api"
	demoWorker    = "demo-worker"
	demoUnrelated = "demo-thumbnailer"
	demoVar       = "STP_POSTGRES_DB_CONNECTION_STRING"
	demoPassword  = "demo-pa55word"
	// demoDeployed is what the sample stack was deployed with: the cloud database, as in a real stack.
	demoDeployed = "postgres://admin:demo-cl0ud-pw@demo-db.cluster-c9x2.eu-west-1.rds.amazonaws.com:5432/app?sslmode=require"
	demoQuery    = "SELECT greeting FROM hello"
)

func (a *app) demoCommand() *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "run the whole flow against an embedded Lambda emulator and bore server: no AWS account needed",
		Description: "Starts, all on this machine: a small TCP service standing in for your database, a bore server, and a\n" +
			"Lambda emulator holding a sample stack. Then runs `stptunnel dev` against them: detect, tunnel, patch,\n" +
			"invoke the function (it reaches the \"database\" through the tunnel), restore. Nothing leaves loopback.",
		Flags:  withGlobals(),
		Action: a.demo,
	}
}

func (a *app) demo(c *cli.Context) error {
	ctx := c.Context // the session below reads the interrupts: a signal ends it, then everything here closes
	db, err := startDemoDatabase()
	if err != nil {
		return fmt.Errorf("starting the demo database: %w", err)
	}
	defer db.Close()
	server, err := bore.NewServer(bore.ServerConfig{BindAddr: "127.0.0.1", ControlPort: 0})
	if err != nil {
		return err
	}
	if err := server.Start(ctx); err != nil {
		return fmt.Errorf("starting the embedded bore server: %w", err)
	}
	defer server.Close()
	sim, err := awssim.New(awssim.Options{Region: "eu-west-1", UpdateDelay: 300 * time.Millisecond})
	if err != nil {
		return fmt.Errorf("starting the Lambda emulator: %w", err)
	}
	defer sim.Close()
	localURL := fmt.Sprintf("postgres://app:%s@localhost:%d/app?sslmode=disable", demoPassword, db.port())
	seedDemoStack(sim)
	sim.RegisterHandler(demoAPI, demoHandler(localURL))
	stateDir, err := os.MkdirTemp("", "stptunnel-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(stateDir)

	a.ui.info("Demo: everything runs on this machine: no AWS account, nothing leaves loopback")
	a.ui.info("  your \"database\":     a TCP service on localhost:%d", db.port())
	a.ui.info("  bore server:         127.0.0.1:%d (stands in for bore.pub)", server.Addr().Port)
	a.ui.info("  Lambda emulator:     %s, stack %q with %s, %s (in a VPC without NAT) and %s",
		sim.URL(), demoStack, demoAPI, demoWorker, demoUnrelated)
	before, _ := sim.Env(demoAPI)
	a.showEnv("Before the session", demoAPI, before)

	local, err := connstr.ParseLocal("postgresDb=" + localURL)
	if err != nil {
		return err
	}
	locals := []session.Local{{Local: local, Flag: "--local postgresDb"}}
	cfg := aws.Config{
		Region:       sim.Region(),
		BaseEndpoint: aws.String(sim.URL()),
		Credentials:  credentials.NewStaticCredentialsProvider("DEMO", "DEMO", ""),
	}
	env := session.Env{
		AWSConfig: func(context.Context, string) (aws.Config, error) { return cfg.Copy(), nil },
		StateDir:  stateDir,
		Report:    a.report,
	}
	opts := session.DevOptions{
		Detect: session.DetectOptions{Locals: locals, Scope: detect.Scope{Stack: demoStack}, VPC: detect.VPCCheck,
			Public: connstr.HostPort{Host: "127.0.0.1", Port: 65535}},
		Tunnel: session.TunnelOptions{Locals: locals, Servers: []tunnel.Server{{Addr: server.Addr().String()}}, Engine: tunnel.EngineNative},
		During: func(ctx context.Context, d *doc.Document) error {
			during, _ := sim.Env(demoAPI)
			a.showEnv("During the session", demoAPI, during)
			a.ui.info("Invoking %s in the emulator: it sends %q to the address in its %s", demoAPI, demoQuery, demoVar)
			answer, err := sim.Invoke(ctx, demoAPI, []byte(demoQuery))
			if err != nil {
				return fmt.Errorf("invoking %s: %w", demoAPI, err)
			}
			a.ui.ok("%s got an answer through the tunnel: %s", demoAPI, strings.TrimSpace(string(answer)))
			return nil
		},
		Interrupts: a.interrupts,
	}
	a.ui.info("Running: stptunnel dev --local postgresDb=%s --stack %s --to %s", localURL, demoStack, server.Addr())
	if err := session.Dev(ctx, doc.New(), opts, env); err != nil {
		return err
	}

	after, _ := sim.Env(demoAPI)
	a.showEnv("After the session", demoAPI, after)
	if !maps.Equal(before, after) {
		return errors.New("demo: the environment after the session differs from before it")
	}
	stats := server.Stats()
	a.ui.ok("%s's environment is back exactly as it was; the bore server relayed %s (%d bytes in, %d out)",
		demoAPI, plural(int(stats.ConnectionsForwarded), "connection"), stats.BytesFromVisitors, stats.BytesToVisitors)
	if db.served() == 0 {
		return errors.New("demo: the database never saw the function's query")
	}
	a.ui.ok("Demo complete. Next: `stptunnel dev --local NAME=URL` against your own AWS account (see --help)")
	return nil
}

// showEnv prints a function's variables, sorted; passwords are redacted by ui like every message. The session
// marker is described, never printed: it holds the deployed values.
func (a *app) showEnv(title, function string, env map[string]string) {
	a.ui.info("%s, %s has:", title, function)
	for _, k := range slices.Sorted(maps.Keys(env)) {
		if k == lambdaenv.MarkerKey {
			a.ui.plain("    %s=%s", k, describeMarker(env[k]))
			continue
		}
		a.ui.plain("    %s=%s", k, env[k])
	}
}

// describeMarker says what a session marker records, without its values: the session, who and the keys.
func describeMarker(value string) string {
	m, err := lambdaenv.ParseMarker(value)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	return fmt.Sprintf("(session marker: session %s of %s since %s; keeps what %s held before)", m.ID, m.By, m.At,
		strings.Join(m.KeyNames(), ", "))
}

// seedDemoStack puts the sample stack into the emulator.
func seedDemoStack(sim *awssim.Server) {
	sim.PutSubnet(awssim.Subnet{ID: "subnet-demo-private", VpcID: "vpc-demo", CidrBlock: "10.0.1.0/24", AvailabilityZone: sim.Region() + "a"})
	sim.PutRouteTable(awssim.RouteTable{ID: "rtb-demo-main", VpcID: "vpc-demo", Main: true, Routes: []awssim.Route{
		{DestinationCidrBlock: "10.0.0.0/16", GatewayID: "local"},
		{DestinationCidrBlock: "0.0.0.0/0", GatewayID: "igw-demo"}, // an internet gateway alone gives Lambda no egress
	}})
	sim.PutFunction(awssim.Function{Name: demoAPI, Runtime: "nodejs20.x", Handler: "index.handler",
		Env: map[string]string{demoVar: demoDeployed, "LOG_LEVEL": "info"}})
	sim.PutFunction(awssim.Function{Name: demoWorker, Runtime: "nodejs20.x", Handler: "worker.handler",
		Env: map[string]string{demoVar: demoDeployed},
		VPC: &awssim.VPCConfig{SubnetIDs: []string{"subnet-demo-private"}, SecurityGroupIDs: []string{"sg-demo"}, VpcID: "vpc-demo"}})
	sim.PutFunction(awssim.Function{Name: demoUnrelated, Runtime: "python3.12", Handler: "app.handler",
		Env: map[string]string{"BUCKET": "demo-images"}})
	sim.PutStack(demoStack, awssim.Stack{Resources: []awssim.StackResource{
		{LogicalID: "ApiFunction", PhysicalID: demoAPI, Type: "AWS::Lambda::Function"},
		{LogicalID: "WorkerFunction", PhysicalID: demoWorker, Type: "AWS::Lambda::Function"},
		{LogicalID: "ThumbnailerFunction", PhysicalID: demoUnrelated, Type: "AWS::Lambda::Function"},
		{LogicalID: "ImagesBucket", PhysicalID: "demo-images", Type: "AWS::S3::Bucket"},
	}})
}

// demoHandler is the function's code "in AWS": it connects to whatever its connection string names. Like a real
// Lambda, it cannot reach the developer's database directly, so it refuses the database's own address (under any
// spelling of this machine) instead of cheating: only the tunnel's address gets through. The cloud database the
// stack was deployed with does not exist here: it is refused without a DNS lookup.
func demoHandler(localURL string) awssim.Handler {
	local, _ := connstr.NewLocal("postgresDb", connstr.TypePostgres, localURL)
	return func(ctx context.Context, env map[string]string, payload []byte) ([]byte, error) {
		return demoInvoke(ctx, env, payload, local.Address)
	}
}

func demoInvoke(ctx context.Context, env map[string]string, payload []byte, local connstr.HostPort) ([]byte, error) {
	value := env[demoVar]
	if connstr.References(value, local, connstr.DefaultPort(connstr.TypePostgres)) {
		return nil, fmt.Errorf("%s still names the database on the developer's machine: a function in AWS cannot reach it", demoVar)
	}
	host, port, err := demoAddress(value)
	if err != nil {
		return nil, err
	}
	if _, err := netip.ParseAddr(host); err != nil {
		return nil, fmt.Errorf("%s names %s, the cloud database, which this demo does not have (not patched?)", demoVar, host)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, port))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write(append(payload, '\n')); err != nil {
		return nil, err
	}
	return io.ReadAll(conn)
}

// demoAddress takes host and port out of a postgres:// URL: the part between '@' and the next '/'.
func demoAddress(value string) (host, port string, err error) {
	rest := value[strings.LastIndex(value, "@")+1:]
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		rest = rest[:i]
	}
	host, port, err = net.SplitHostPort(rest)
	if err != nil {
		return "", "", fmt.Errorf("%s has no host:port: %w", demoVar, err)
	}
	return host, port, nil
}

// demoDatabase stands in for the developer's database: one line in, one answer out.
type demoDatabase struct {
	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	count int
}

func startDemoDatabase() (*demoDatabase, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	db := &demoDatabase{ln: ln}
	db.wg.Add(1)
	go db.serve()
	return db, nil
}

func (db *demoDatabase) port() int { return db.ln.Addr().(*net.TCPAddr).Port }

func (db *demoDatabase) served() int {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.count
}

func (db *demoDatabase) serve() {
	defer db.wg.Done()
	for {
		conn, err := db.ln.Accept()
		if err != nil {
			return // closed
		}
		db.wg.Add(1)
		go func() {
			defer db.wg.Done()
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			line, err := bufio.NewReader(conn).ReadString('\n')
			if err != nil && line == "" {
				return
			}
			db.mu.Lock()
			db.count++
			db.mu.Unlock()
			fmt.Fprintf(conn, "1 row: \"hello from the database on your machine\" (query %q)\n", strings.TrimSpace(line))
		}()
	}
}

// Close stops the service and waits for its connections.
func (db *demoDatabase) Close() error {
	err := db.ln.Close()
	db.wg.Wait()
	return err
}
