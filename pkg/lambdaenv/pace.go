package lambdaenv

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go/middleware"
)

// Lambda's default request quotas per account and region (docs: Lambda quotas, API requests). The control plane
// is every API except Invoke, GetFunction and GetPolicy: GetFunctionConfiguration, UpdateFunctionConfiguration and
// ListFunctions share it.
const (
	DefaultControlPlaneRate = 15  // requests per second
	DefaultGetFunctionRate  = 100 // requests per second
)

// pacer spaces the calls drawn from one Lambda quota so that they never arrive faster than the quota allows: one
// call every 1/rate seconds, no burst, in the order the calls asked. It is shared by every goroutine of a Patcher.
// A 429 says the quota is spent (another client of the account shares it, or the calls bunched up on the way): the
// pacer lowers its rate by a quarter (down to a quarter of the quota) and skips one interval at the new rate, holding
// the calls that had reserved a time within it; each call that succeeds then gives back a tenth of the quota, so a
// quota shared with another client settles below it and a lone client is back at full rate within a few calls. The
// throttled call itself waits for its own Retry-After (paceCalls) before it is tried again.
type pacer struct {
	quota float64 // calls per second

	mu          sync.Mutex
	rate        float64   // the current rate, at most quota
	next        time.Time // when the next call may start
	pausedUntil time.Time // the end of the interval skipped after the last 429
	throttles   int       // bumped by each 429: a call that reserved its time before one reserves again
}

func newPacer(quota float64) *pacer { return &pacer{quota: quota, rate: quota} }

// wait returns when the caller may send its call, or the context's error.
func (p *pacer) wait(ctx context.Context) error {
	for {
		p.mu.Lock()
		now := time.Now()
		at := p.next
		if at.Before(now) {
			at = now
		}
		p.next = at.Add(p.interval())
		throttles := p.throttles
		p.mu.Unlock()

		if err := sleep(ctx, time.Until(at)); err != nil {
			return err
		}
		p.mu.Lock()
		stale := p.throttles != throttles && at.Before(p.pausedUntil)
		p.mu.Unlock()
		if !stale {
			return nil
		}
	}
}

// interval is the time between two calls at the current rate. Callers hold p.mu.
func (p *pacer) interval() time.Duration { return time.Duration(float64(time.Second) / p.rate) }

// throttled takes a 429 into account: a quarter less rate, and one interval at that rate without a call.
func (p *pacer) throttled() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rate = max(p.rate*3/4, p.quota/4)
	until := time.Now().Add(p.interval())
	if until.After(p.pausedUntil) {
		p.pausedUntil = until
	}
	if until.After(p.next) {
		p.next = until
	}
	p.throttles++
}

// succeeded takes a call the quota let through into account.
func (p *pacer) succeeded() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rate = min(p.quota, p.rate+p.quota/10)
}

// pacers are a Patcher's two quotas.
type pacers struct {
	controlPlane, getFunction *pacer
}

// of is the pacer of a Lambda operation; nil for those outside both quotas (Invoke).
func (ps *pacers) of(op string) *pacer {
	switch op {
	case "Invoke", "GetPolicy":
		return nil
	case "GetFunction":
		return ps.getFunction
	}
	return ps.controlPlane
}

// retryAfter is how long a 429 asks the caller to wait: its Retry-After in seconds, one second when absent.
func retryAfter(tmr *types.TooManyRequestsException) time.Duration {
	if n, err := strconv.Atoi(aws.ToString(tmr.RetryAfterSeconds)); err == nil && n > 0 {
		return min(time.Duration(n)*time.Second, time.Minute)
	}
	return time.Second
}

// paceCalls is the per-call option that makes every attempt of a Lambda call (the SDK's own retries included) wait
// for its quota's pacer and then for an API slot, hold the slot for the attempt only, and report a 429 to the pacer.
// A hook set with withBeforeSend runs then, before the attempt takes its slot. An attempt that follows a 429 of the
// same call also waits until the 429's Retry-After has passed (at most
// maxPause, the Patcher's RetryMax), whatever the SDK's own back-off. The pacing sits right after the SDK's retry
// middleware, so each attempt is paced and none is sent unpaced; a middleware before it keeps the call's state
// across its attempts.
func paceCalls(ps *pacers, slots apiSlots, maxPause time.Duration) func(*lambda.Options) {
	callMW := middleware.FinalizeMiddlewareFunc("stptunnel.call", func(ctx context.Context, in middleware.FinalizeInput,
		next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
		return next.HandleFinalize(context.WithValue(ctx, callKey{}, &callState{}), in)
	})
	attemptMW := middleware.FinalizeMiddlewareFunc("stptunnel.pace", func(ctx context.Context, in middleware.FinalizeInput,
		next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
		call, _ := ctx.Value(callKey{}).(*callState)
		if call != nil {
			if err := sleep(ctx, time.Until(call.notBefore)); err != nil {
				return middleware.FinalizeOutput{}, middleware.Metadata{}, err
			}
		}
		pc := ps.of(awsmiddleware.GetOperationName(ctx))
		if pc != nil {
			if err := pc.wait(ctx); err != nil {
				return middleware.FinalizeOutput{}, middleware.Metadata{}, err
			}
		}
		if beforeSend, _ := ctx.Value(beforeSendKey{}).(func() error); beforeSend != nil {
			if err := beforeSend(); err != nil {
				return middleware.FinalizeOutput{}, middleware.Metadata{}, err
			}
		}
		if err := slots.acquire(ctx); err != nil {
			return middleware.FinalizeOutput{}, middleware.Metadata{}, err
		}
		out, md, err := next.HandleFinalize(ctx, in)
		slots.release()
		var tmr *types.TooManyRequestsException
		switch {
		case errors.As(err, &tmr):
			if pc != nil {
				pc.throttled()
			}
			if call != nil {
				call.notBefore = time.Now().Add(min(retryAfter(tmr), maxPause))
			}
		case err == nil && pc != nil:
			pc.succeeded()
		}
		return out, md, err
	})
	return func(o *lambda.Options) {
		o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
			if err := stack.Finalize.Insert(callMW, "Retry", middleware.Before); err != nil {
				return err
			}
			return stack.Finalize.Insert(attemptMW, "Retry", middleware.After)
		})
	}
}

// withBeforeSend makes every attempt of the call made with ctx run f once its turn under the quota has come, right
// before it is sent; an error of f is the call's, and nothing is sent.
func withBeforeSend(ctx context.Context, f func() error) context.Context {
	return context.WithValue(ctx, beforeSendKey{}, f)
}

type beforeSendKey struct{}

// callKey and callState carry one call's state across its attempts.
type (
	callKey   struct{}
	callState struct{ notBefore time.Time }
)

// sleep waits d, or returns the context's error if it ends first.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}
