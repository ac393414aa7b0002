package awssim_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"

	"github.com/stptunnel/stptunnel/pkg/awssim"
)

func TestParseFault(t *testing.T) {
	for _, tc := range []struct {
		spec string
		want awssim.Fault
		bad  bool
	}{
		{spec: "throttle,next=2", want: awssim.Fault{Kind: awssim.FaultThrottle, Next: 2}},
		{spec: "error,rate=0.25", want: awssim.Fault{Kind: awssim.FaultServerError, Rate: 0.25}},
		{spec: "latency=200ms", want: awssim.Fault{Latency: 200 * time.Millisecond}},
		{spec: "throttle", want: awssim.Fault{Kind: awssim.FaultThrottle, Rate: 1}},
		{spec: "drop,next=1,latency=1s", want: awssim.Fault{Kind: awssim.FaultDrop, Next: 1, Latency: time.Second}},
		{spec: "throttle,next=1,retry-after=3", want: awssim.Fault{Kind: awssim.FaultThrottle, Next: 1, RetryAfter: 3}},
		{spec: "none"},
		{spec: "explode", bad: true},
		{spec: "error,rate=2", bad: true},
		{spec: "error,next=-1", bad: true},
		{spec: "error,when=now", bad: true},
	} {
		got, err := awssim.ParseFault(tc.spec)
		if tc.bad != (err != nil) || got != tc.want {
			t.Errorf("ParseFault(%q) = %+v, %v; want %+v (error: %v)", tc.spec, got, err, tc.want, tc.bad)
		}
	}
}

// TestRetriedFaults checks the SDK retries what AWS clients retry, and that
// every attempt is counted.
func TestRetriedFaults(t *testing.T) {
	s := newServer(t, awssim.Options{})
	s.PutFunction(awssim.Function{Name: "api"})
	s.PutStack("app", awssim.Stack{Resources: []awssim.StackResource{{LogicalID: "Api", PhysicalID: "api", Type: "AWS::Lambda::Function"}}})
	s.PutRouteTable(awssim.RouteTable{ID: "rtb-1", VpcID: "vpc-1", Main: true})
	c := newClients(s)

	calls := map[string]func() error{
		"GetFunction": func() error {
			_, err := c.lambda.GetFunction(ctxT(t), &lambda.GetFunctionInput{FunctionName: aws.String("api")})
			return err
		},
		"ListStackResources": func() error {
			_, err := c.cfn.ListStackResources(ctxT(t), &cloudformation.ListStackResourcesInput{StackName: aws.String("app")})
			return err
		},
		"DescribeRouteTables": func() error {
			_, err := c.ec2.DescribeRouteTables(ctxT(t), &ec2.DescribeRouteTablesInput{})
			return err
		},
	}
	for op, call := range calls {
		for _, kind := range []awssim.FaultKind{awssim.FaultThrottle, awssim.FaultServerError, awssim.FaultDrop} {
			before := s.Calls(op)
			s.SetFault(op, awssim.Fault{Kind: kind, Next: 2})
			if err := call(); err != nil {
				t.Errorf("%s with 2 %s faults: %v (the SDK should retry through them)", op, kind, err)
			}
			if n := s.Calls(op) - before; n != 3 {
				t.Errorf("%s with 2 %s faults: %d calls, want 3", op, kind, n)
			}
		}
		s.SetFault(op, awssim.Fault{})
	}
}

func TestFaultErrors(t *testing.T) {
	s := newServer(t, awssim.Options{Seed: 7})
	s.PutFunction(awssim.Function{Name: "api"})
	c := newClients(s)

	s.SetFault("GetFunctionConfiguration", awssim.Fault{Kind: awssim.FaultThrottle, Rate: 1, RetryAfter: 2})
	_, err := c.lambda.GetFunctionConfiguration(ctxT(t), lambdaConfigInput("api"))
	var throttled *types.TooManyRequestsException
	if !errors.As(err, &throttled) || aws.ToString(throttled.RetryAfterSeconds) != "2" || throttled.Reason != types.ThrottleReasonCallerRateLimitExceeded {
		t.Errorf("always throttled: got %v", err)
	}
	if n := s.Calls("GetFunctionConfiguration"); n != 3 {
		t.Errorf("calls %d, want 3 attempts", n)
	}

	s.SetFault("GetFunctionConfiguration", awssim.Fault{Kind: awssim.FaultServerError, Rate: 1})
	_, err = c.lambda.GetFunctionConfiguration(ctxT(t), lambdaConfigInput("api"))
	var service *types.ServiceException
	if !errors.As(err, &service) {
		t.Errorf("always 5xx: got %v", err)
	}

	s.SetFault("UpdateFunctionConfiguration", awssim.Fault{Kind: awssim.FaultConflict, Next: 1})
	_, err = c.lambda.UpdateFunctionConfiguration(ctxT(t), &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("api")})
	var conflict *types.ResourceConflictException
	if !errors.As(err, &conflict) || conflict.ErrorMessage() !=
		"The operation cannot be performed at this time. An update is in progress for resource: arn:aws:lambda:eu-west-1:123456789012:function:api" {
		t.Errorf("conflict: got %v", err)
	}
	if n := s.Calls("UpdateFunctionConfiguration"); n != 1 {
		t.Errorf("a 409 was retried: %d calls", n)
	}
	if _, err := c.lambda.UpdateFunctionConfiguration(ctxT(t), &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("api")}); err != nil {
		t.Errorf("after the one conflict: %v", err)
	}

	// "*" covers every operation without its own fault.
	s.SetFault("GetFunctionConfiguration", awssim.Fault{})
	s.SetFault("*", awssim.Fault{Kind: awssim.FaultConflict, Rate: 1})
	_, err = c.cfn.ListStackResources(ctxT(t), &cloudformation.ListStackResourcesInput{StackName: aws.String("x")})
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "OperationInProgressException" {
		t.Errorf("* conflict on CloudFormation: %v", err)
	}
	s.SetFault("*", awssim.Fault{})

	// Latency is bounded by the caller's context.
	s.SetFault("GetFunctionConfiguration", awssim.Fault{Latency: time.Hour})
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.lambda.GetFunctionConfiguration(ctx, lambdaConfigInput("api")); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("latency: got %v, want deadline exceeded", err)
	}
}

// TestFaultRateIsSeeded checks that a rate draws from the seeded RNG: the
// same seed fails the same calls.
func TestFaultRateIsSeeded(t *testing.T) {
	pattern := func(seed int64) []bool {
		// Quotas off: 32 calls are over Lambda's 15 per second, and which ones a quota refuses (and the SDK then
		// retries) depends on the machine's speed, not on the seed.
		s := newServer(t, awssim.Options{Seed: seed, Quotas: awssim.Quotas{Off: true}})
		s.PutFunction(awssim.Function{Name: "api"})
		s.SetFault("GetFunctionConfiguration", awssim.Fault{Kind: awssim.FaultConflict, Rate: 0.5})
		c := newClients(s).lambda
		var failed []bool
		for range 32 {
			_, err := c.GetFunctionConfiguration(ctxT(t), lambdaConfigInput("api"))
			failed = append(failed, err != nil)
		}
		return failed
	}
	a, b := pattern(42), pattern(42)
	var failures int
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("seed 42 gave two patterns:\n%v\n%v", a, b)
		}
		if a[i] {
			failures++
		}
	}
	if failures == 0 || failures == len(a) {
		t.Errorf("rate 0.5 failed %d of %d calls", failures, len(a))
	}
}
