package awssim_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/stptunnel/stptunnel/pkg/awssim"
)

// The contract tests drive the emulator through the real SDK clients only.

const testRegion = "eu-west-1"

func newServer(t *testing.T, opts awssim.Options) *awssim.Server {
	t.Helper()
	if opts.Region == "" {
		opts.Region = testRegion
	}
	s, err := awssim.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// sdkConfig points the SDK at s with the standard retryer (3 attempts) minus
// its waits, so retried faults do not slow the tests.
func sdkConfig(s *awssim.Server, maxAttempts int) aws.Config {
	return aws.Config{
		Region:       testRegion,
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDAWSSIM", "secret", ""),
		BaseEndpoint: aws.String(s.URL()),
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = maxAttempts
				o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return time.Millisecond, nil })
				o.RateLimiter = ratelimit.None
			})
		},
	}
}

type clients struct {
	lambda *lambda.Client
	cfn    *cloudformation.Client
	ec2    *ec2.Client
}

func newClients(s *awssim.Server) clients {
	cfg := sdkConfig(s, retry.DefaultMaxAttempts)
	return clients{lambda: lambda.NewFromConfig(cfg), cfn: cloudformation.NewFromConfig(cfg), ec2: ec2.NewFromConfig(cfg)}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// waitUpdated runs the SDK's FunctionUpdatedV2 waiter with short delays.
func waitUpdated(t *testing.T, c *lambda.Client, name string) *lambda.GetFunctionOutput {
	t.Helper()
	w := lambda.NewFunctionUpdatedV2Waiter(c, func(o *lambda.FunctionUpdatedV2WaiterOptions) {
		o.MinDelay = 5 * time.Millisecond
		o.MaxDelay = 20 * time.Millisecond
	})
	out, err := w.WaitForOutput(ctxT(t), &lambda.GetFunctionInput{FunctionName: aws.String(name)}, 10*time.Second)
	if err != nil {
		t.Fatalf("waiting for %s: %v", name, err)
	}
	return out
}

func lambdaConfigInput(name string) *lambda.GetFunctionConfigurationInput {
	return &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(name)}
}
