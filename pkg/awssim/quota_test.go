package awssim_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/stptunnel/stptunnel/pkg/awssim"
)

// frozenClock is a clock that moves only when told.
type frozenClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *frozenClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *frozenClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// noRetryClient is a Lambda client that makes one attempt per call, so each 429 reaches the test.
func noRetryClient(s *awssim.Server) *lambda.Client {
	return lambda.NewFromConfig(sdkConfig(s, 1))
}

// TestQuotasThrottleAsLambda holds the clock still and checks Lambda's default quotas through the real SDK: 15
// control-plane calls pass, shared by ListFunctions, GetFunctionConfiguration and UpdateFunctionConfiguration; the
// 16th is a 429 TooManyRequestsException the SDK decodes with its Reason and Retry-After; GetFunction has its own
// bucket of 100; Invoke has none; time refills the buckets.
func TestQuotasThrottleAsLambda(t *testing.T) {
	s := newServer(t, awssim.Options{})
	clock := &frozenClock{now: time.Unix(1_800_000_000, 0)}
	awssim.SetClock(s, clock.Now)
	s.PutFunction(awssim.Function{Name: "api", Env: map[string]string{"A": "1"}, Invoke: "echo"})
	c := noRetryClient(s)
	ctx := ctxT(t)
	name := aws.String("api")

	controlPlane := []func() error{
		func() error { _, err := c.ListFunctions(ctx, &lambda.ListFunctionsInput{}); return err },
		func() error { _, err := c.GetFunctionConfiguration(ctx, lambdaConfigInput("api")); return err },
		func() error {
			_, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: name, Description: aws.String("x")})
			return err
		},
	}
	for i := range 15 {
		if err := controlPlane[i%3](); err != nil && !isConflict(err) {
			t.Fatalf("control-plane call %d of 15: %v", i+1, err)
		}
	}
	for i, call := range controlPlane {
		assertThrottled(t, call(), 1)
		if i == 0 && s.Throttled("ListFunctions") != 1 {
			t.Errorf("Throttled(ListFunctions) = %d, want 1", s.Throttled("ListFunctions"))
		}
	}
	if got := s.Calls("ListFunctions") + s.Calls("GetFunctionConfiguration") + s.Calls("UpdateFunctionConfiguration"); got != 15 {
		t.Errorf("Calls counted %d control-plane calls, want the 15 admitted", got)
	}

	// GetFunction draws from its own bucket: 100 pass while the control plane is exhausted, the 101st does not.
	for i := range 100 {
		if _, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: name}); err != nil {
			t.Fatalf("GetFunction %d of 100 with the control plane exhausted: %v", i+1, err)
		}
	}
	_, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: name})
	assertThrottled(t, err, 1)

	// Invoke is not under these quotas.
	if _, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: name, Payload: []byte(`{}`)}); err != nil {
		t.Fatalf("Invoke with both buckets empty: %v", err)
	}

	// One fifteenth of a second later one control-plane call passes, and only one.
	clock.Advance(time.Second / 15)
	if err := controlPlane[1](); err != nil {
		t.Fatalf("a token later: %v", err)
	}
	assertThrottled(t, controlPlane[1](), 1)

	// Turned off, nothing is throttled.
	s.SetQuotas(awssim.Quotas{Off: true})
	for range 20 {
		if err := controlPlane[1](); err != nil {
			t.Fatalf("quotas off: %v", err)
		}
	}
}

func isConflict(err error) bool {
	var conflict *types.ResourceConflictException
	return errors.As(err, &conflict)
}

// assertThrottled checks err is Lambda's 429 for a caller over its rate, as the SDK decodes it.
func assertThrottled(t *testing.T, err error, retryAfter int) {
	t.Helper()
	var tmr *types.TooManyRequestsException
	if !errors.As(err, &tmr) {
		t.Fatalf("err = %v, want TooManyRequestsException", err)
	}
	if tmr.Reason != types.ThrottleReasonCallerRateLimitExceeded || aws.ToString(tmr.Type) != "User" ||
		tmr.ErrorMessage() != "Rate exceeded" || aws.ToString(tmr.RetryAfterSeconds) != "1" {
		t.Errorf("429 = Reason %q, Type %q, message %q, RetryAfterSeconds %q; want CallerRateLimitExceeded, User, Rate exceeded, %d",
			tmr.Reason, aws.ToString(tmr.Type), tmr.ErrorMessage(), aws.ToString(tmr.RetryAfterSeconds), retryAfter)
	}
	var resp *awshttp.ResponseError
	if !errors.As(err, &resp) || resp.HTTPStatusCode() != http.StatusTooManyRequests ||
		resp.Response.Header.Get("Retry-After") != "1" || resp.Response.Header.Get("X-Amzn-ErrorType") != "TooManyRequestsException" {
		t.Errorf("429 response: %v", err)
	}
}

// TestQuotasAtTheRealClock sends control-plane calls from 8 goroutines as fast as they go for half a second: what
// passes never exceeds the bucket (15) plus the refill over the time measured, and the SDK's standard retryer,
// which retries 429s, is what a client without pacing has to fall back on.
func TestQuotasAtTheRealClock(t *testing.T) {
	s := newServer(t, awssim.Options{Quotas: awssim.Quotas{ControlPlane: 20}})
	s.PutFunction(awssim.Function{Name: "api"})
	c := noRetryClient(s)
	ctx, cancel := context.WithTimeout(ctxT(t), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for ctx.Err() == nil {
				_, err := c.GetFunctionConfiguration(ctx, lambdaConfigInput("api"))
				var tmr *types.TooManyRequestsException
				if err != nil && !errors.As(err, &tmr) && ctx.Err() == nil && !strings.Contains(err.Error(), "context") {
					t.Errorf("unexpected error: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	passed, refused := s.Calls("GetFunctionConfiguration"), s.Throttled("GetFunctionConfiguration")
	t.Logf("%.2f s: %d passed, %d throttled", elapsed, passed, refused)
	if limit := 20 + int(elapsed*20) + 1; passed > limit {
		t.Errorf("%d calls passed in %.2f s at 20 per second (bucket of 20): more than %d", passed, elapsed, limit)
	}
	if refused == 0 {
		t.Errorf("no call throttled")
	}
}

func TestParseQuotas(t *testing.T) {
	for _, tc := range []struct {
		spec string
		want awssim.Quotas
		bad  bool
	}{
		{spec: "lambda", want: awssim.LambdaQuotas},
		{spec: "off", want: awssim.Quotas{Off: true}},
		{spec: "control=5", want: awssim.Quotas{ControlPlane: 5, GetFunction: 100}},
		{spec: "control=2.5,getfunction=10", want: awssim.Quotas{ControlPlane: 2.5, GetFunction: 10}},
		{spec: "control=0", bad: true},
		{spec: "control", bad: true},
		{spec: "writes=3", bad: true},
	} {
		got, err := awssim.ParseQuotas(tc.spec)
		if tc.bad != (err != nil) || got != tc.want {
			t.Errorf("ParseQuotas(%q) = %+v, %v; want %+v (error: %v)", tc.spec, got, err, tc.want, tc.bad)
		}
		if err == nil {
			if back, err := awssim.ParseQuotas(got.String()); err != nil || back != got {
				t.Errorf("ParseQuotas(%q.String() = %q) = %+v, %v", tc.spec, got.String(), back, err)
			}
		}
	}
}
