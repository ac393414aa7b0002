package cli

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stptunnel/stptunnel/pkg/awssim"
	"github.com/stptunnel/stptunnel/pkg/doc"
)

// TestDetectPagination runs `stptunnel detect` over a region of 260 functions (6 ListFunctions pages), 65 of
// them bound, 22 of those in VPC subnets, and counts the API calls the command makes.
func TestDetectPagination(t *testing.T) {
	sim, err := awssim.New(awssim.Options{Region: "eu-west-1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	seed := awssim.Seed{RouteTables: []awssim.RouteTable{{ID: "rtb-main", VpcID: "vpc-1", Main: true,
		Routes: []awssim.Route{{DestinationCidrBlock: "0.0.0.0/0", NatGatewayID: "nat-1"}}}}}
	const n = 260
	for i := range n {
		f := awssim.Function{Name: fmt.Sprintf("svc-%03d", i), Env: map[string]string{"LOG_LEVEL": "debug"}}
		if i%4 == 0 {
			f.Env["DATABASE_URL"] = "postgres://app:pw@localhost:5432/app"
		}
		if i%12 == 0 {
			subnet := fmt.Sprintf("subnet-%03d", i)
			seed.Subnets = append(seed.Subnets, awssim.Subnet{ID: subnet, VpcID: "vpc-1"})
			f.VPC = &awssim.VPCConfig{SubnetIDs: []string{subnet}, VpcID: "vpc-1"}
		}
		seed.Functions = append(seed.Functions, f)
	}
	if err := sim.Apply(seed); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL": sim.URL(), "AWS_REGION": "eu-west-1", "AWS_PROFILE": "", "AWS_EC2_METADATA_DISABLED": "true",
		"AWS_ACCESS_KEY_ID": "AKIDDETECT", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_SESSION_TOKEN": "",
		"AWS_CONFIG_FILE": filepath.Join(dir, "config"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
		"BORE_SERVER": "", "GITHUB_ACTIONS": "",
	} {
		t.Setenv(k, v)
	}

	var stdout, stderr bytes.Buffer
	code := Main(context.Background(), BuildInfo{Version: "test"}, []string{"stptunnel", "detect", "--local", "db=postgres://app:pw@localhost:5432/app"},
		strings.NewReader(""), &stdout, &stderr)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	d, err := doc.Parse(stdout.Bytes(), "stdout")
	if err != nil {
		t.Fatal(err)
	}
	fns, _ := d.Functions()
	skipped, _ := d.Skipped()
	if len(fns) != 65 || len(skipped) != 0 {
		t.Errorf("%d functions, %d skipped; want 65, 0", len(fns), len(skipped))
	}
	if want := "✓ Found 65 functions using local resources (scanned 260)\n"; !strings.HasSuffix(stderr.String(), want) {
		t.Errorf("stderr ends %q, want %q", stderr.String()[max(0, stderr.Len()-80):], want)
	}
	for op, want := range map[string]int{"ListFunctions": 6, "GetFunctionConfiguration": 0, "GetFunction": 0, "DescribeRouteTables": 2} {
		if got := sim.Calls(op); got != want {
			t.Errorf("%s: %d calls, want %d", op, got, want)
		}
	}
}
