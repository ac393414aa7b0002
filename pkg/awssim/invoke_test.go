package awssim_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/stptunnel/stptunnel/pkg/awssim"
)

func TestInvokeSeesLiveEnvironment(t *testing.T) {
	s := newServer(t, awssim.Options{UpdateDelay: time.Hour})
	s.PutFunction(awssim.Function{Name: "api", Env: map[string]string{"DB": "old"}})
	s.RegisterHandler("api", func(_ context.Context, env map[string]string, payload []byte) ([]byte, error) {
		if string(payload) == "fail" {
			return nil, errors.New("boom")
		}
		return []byte(env["DB"] + "|" + env["AWS_LAMBDA_FUNCTION_NAME"] + "|" + env["AWS_REGION"]), nil
	})
	c := newClients(s).lambda

	out, err := s.Invoke(t.Context(), "api", nil)
	if err != nil || string(out) != "old|api|eu-west-1" {
		t.Fatalf("Invoke = %q, %v", out, err)
	}
	// While the update is InProgress, invocations still run the old configuration.
	s.SetEnv("api", map[string]string{"DB": "new"})
	if out, _ := s.Invoke(t.Context(), "api", nil); string(out) != "old|api|eu-west-1" {
		t.Errorf("during the update: %q", out)
	}
	s.SetUpdateDelay(0)
	s.SetEnv("api", map[string]string{"DB": "new"}) // a deploy over the update in progress
	_ = waitUpdated(t, c, "api")

	resp, err := c.Invoke(ctxT(t), &lambda.InvokeInput{FunctionName: aws.String("arn:aws:lambda:eu-west-1:123456789012:function:api"), Payload: []byte("{}")})
	if err != nil || resp.StatusCode != 200 || resp.FunctionError != nil || string(resp.Payload) != "new|api|eu-west-1" {
		t.Errorf("SDK Invoke = %+v, %v", resp, err)
	}
	resp, err = c.Invoke(ctxT(t), &lambda.InvokeInput{FunctionName: aws.String("api"), Payload: []byte("fail")})
	if err != nil || aws.ToString(resp.FunctionError) != "Unhandled" || !bytes.Contains(resp.Payload, []byte("boom")) {
		t.Errorf("SDK Invoke failing = %+v, %v", resp, err)
	}
	resp, err = c.Invoke(ctxT(t), &lambda.InvokeInput{FunctionName: aws.String("api"), InvocationType: types.InvocationTypeDryRun})
	if err != nil || resp.StatusCode != 204 {
		t.Errorf("DryRun = %+v, %v", resp, err)
	}
	_, err = c.Invoke(ctxT(t), &lambda.InvokeInput{FunctionName: aws.String("nope")})
	var notFound *types.ResourceNotFoundException
	if !errors.As(err, &notFound) {
		t.Errorf("Invoke missing: %v", err)
	}
	if _, err := s.Invoke(t.Context(), "nope", nil); !errors.Is(err, awssim.ErrFunctionNotFound) {
		t.Errorf("Go Invoke missing: %v", err)
	}
	s.PutFunction(awssim.Function{Name: "bare"})
	if _, err := s.Invoke(t.Context(), "bare", nil); !errors.Is(err, awssim.ErrNoHandler) {
		t.Errorf("Go Invoke without handler: %v", err)
	}
	if n := s.Calls("Invoke"); n != 4 {
		t.Errorf("Invoke calls = %d, want 4 (Go-level invocations are not API calls)", n)
	}
}

func TestBuiltinHandlers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		in, _ := io.ReadAll(conn)
		_, _ = conn.Write(append([]byte("pong:"), in...))
	}()

	s := newServer(t, awssim.Options{})
	s.PutFunction(awssim.Function{Name: "dialer", Invoke: "dial:DB_URL", Env: map[string]string{"DB_URL": "postgres://u:p@" + ln.Addr().String() + "/db"}})
	s.PutFunction(awssim.Function{Name: "envy", Invoke: "env", Env: map[string]string{"B_KEY": "<2>", "A_KEY": "1"}})
	s.PutFunction(awssim.Function{Name: "parrot", Invoke: "echo"})

	for _, tc := range []struct{ fn, payload, want string }{
		{"dialer", "ping", "pong:ping"},
		{"envy", "", `{"A_KEY":"1","B_KEY":"<2>"}`},
		{"parrot", "hello", "hello"},
	} {
		out, err := s.Invoke(t.Context(), tc.fn, []byte(tc.payload))
		if err != nil || string(out) != tc.want {
			t.Errorf("%s: %q, %v; want %q", tc.fn, out, err, tc.want)
		}
	}
	if _, ok := awssim.BuiltinHandler("nope"); ok {
		t.Error("unknown builtin accepted")
	}
}

// TestSeedFileThroughDefaultConfig loads the documented seed and reaches it
// the way the CLI does: config.LoadDefaultConfig and AWS_ENDPOINT_URL.
func TestSeedFileThroughDefaultConfig(t *testing.T) {
	f, err := os.Open("testdata/seed.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seed, err := awssim.LoadSeed(f)
	if err != nil {
		t.Fatal(err)
	}
	s := newServer(t, awssim.Options{})
	if err := s.Apply(seed); err != nil {
		t.Fatal(err)
	}

	t.Setenv("AWS_ENDPOINT_URL", s.URL())
	t.Setenv("AWS_REGION", "eu-west-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDAWSSIM")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	cfg, err := config.LoadDefaultConfig(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	c := lambda.NewFromConfig(cfg)
	out, err := c.GetFunctionConfiguration(ctxT(t), lambdaConfigInput("arn:aws:lambda:eu-west-1:123456789012:function:api"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.Environment.Variables["STP_POSTGRES_DB_CONNECTION_STRING"], "postgres://") {
		t.Errorf("api env %v", out.Environment.Variables)
	}
	worker, err := c.GetFunctionConfiguration(ctxT(t), lambdaConfigInput("worker"))
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(worker.VpcConfig.VpcId) != "vpc-1" {
		t.Errorf("worker VpcConfig %+v", worker.VpcConfig)
	}
}

func TestLoadSeedRejects(t *testing.T) {
	for _, tc := range []struct{ name, seed, want string }{
		{"unknown field", `{"functions":[{"name":"a","enviroment":{}}]}`, "unknown field"},
		{"bad route state", `{"routeTables":[{"id":"rtb-1","vpcId":"vpc-1","routes":[{"destinationCidrBlock":"0.0.0.0/0","state":"up"}]}]}`, "want active or blackhole"},
		{"duplicate function", `{"functions":[{"name":"a"},{"name":"a"}]}`, "duplicate"},
		{"bad name", `{"functions":[{"name":"a b"}]}`, "invalid name"},
		{"bad account", `{"account":"12"}`, "12 digits"},
		{"bad invoke", `{"functions":[{"name":"a","invoke":"run"}]}`, "unknown invoke"},
	} {
		_, err := awssim.LoadSeed(strings.NewReader(tc.seed))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
}
