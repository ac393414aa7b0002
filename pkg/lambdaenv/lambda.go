package lambdaenv

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/sethvargo/go-retry"
)

// Defaults of the Patcher's timing fields.
const (
	DefaultConcurrency  = 8 // calls in flight
	DefaultRetryBase    = 250 * time.Millisecond
	DefaultRetryMax     = 5 * time.Second
	DefaultMaxAttempts  = 10
	DefaultPollInterval = 500 * time.Millisecond
	DefaultWaitTimeout  = 5 * time.Minute
)

// ErrNotFound is wrapped by the errors about a function that does not exist (or no longer does).
var ErrNotFound = errors.New("function not found")

// NoAccessError reports a function whose variables cannot be read (KMS): it is never written.
type NoAccessError struct{ Code, Message string }

func (e *NoAccessError) Error() string {
	return fmt.Sprintf("its variables cannot be read (%s): they are encrypted with a KMS key this identity cannot use", e.Code)
}

// config is what the writer needs of a function's configuration.
type config struct {
	name, arn string
	revision  string
	status    types.LastUpdateStatus
	env       map[string]string
}

// compute decides, from the function's current configuration, the variables to write. write false means nothing
// needs writing. It may be called several times: after a PreconditionFailed or a conflict the function is re-read.
type compute func(cfg config) (next map[string]string, write bool, err error)

// writer runs read-modify-write cycles against one function.
type writer struct {
	p      *Patcher
	ref    string // what to call the function: ARN or name
	region string
	name   string // for messages
	slots  apiSlots
}

// options are the per-call options of every call about the function: its region, and the pacing of each attempt
// to the Patcher's quotas within the API slots.
func (w writer) options() []func(*lambda.Options) {
	return []func(*lambda.Options){
		func(o *lambda.Options) {
			if w.region != "" && w.region != o.Region {
				o.Region = w.region
			}
		},
		paceCalls(w.p.pacers(), w.slots, w.p.retryMax()),
	}
}

// read returns the function's configuration. A function still InProgress is waited for first, because its
// RevisionId changes again when the update completes and a write would only meet a conflict.
func (w writer) read(ctx context.Context) (config, error) {
	cfg, err := w.get(ctx)
	if err != nil {
		return config{}, err
	}
	if cfg.status == types.LastUpdateStatusInProgress {
		return w.waitIdle(ctx)
	}
	return cfg, nil
}

// get reads the function's configuration with GetFunction: the same configuration as GetFunctionConfiguration
// (variables, RevisionId, LastUpdateStatus), under GetFunction's own quota of 100 requests per second instead of
// the control plane's 15, which the updates need.
func (w writer) get(ctx context.Context) (config, error) {
	out, err := w.p.Client.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(w.ref)}, w.options()...)
	if err != nil {
		var nf *types.ResourceNotFoundException
		if errors.As(err, &nf) {
			return config{}, fmt.Errorf("reading configuration: %w: %w", ErrNotFound, err)
		}
		return config{}, fmt.Errorf("reading configuration: %w", err)
	}
	c := out.Configuration
	if c == nil {
		return config{}, fmt.Errorf("reading configuration: GetFunction answered without a configuration")
	}
	cfg := config{name: aws.ToString(c.FunctionName), arn: aws.ToString(c.FunctionArn), revision: aws.ToString(c.RevisionId),
		status: c.LastUpdateStatus, env: map[string]string{}}
	if e := c.Environment; e != nil {
		if e.Error != nil {
			return config{}, fmt.Errorf("reading configuration: %w", &NoAccessError{Code: aws.ToString(e.Error.ErrorCode), Message: aws.ToString(e.Error.Message)})
		}
		maps.Copy(cfg.env, e.Variables)
	}
	return cfg, nil
}

// waitIdle polls GetFunction until the function's last update is over, and returns the configuration read last. It
// is called when the function is known to be InProgress (an update just accepted, a read, a conflict), so it
// sleeps PollInterval before the first read; the delay then grows by half up to 4×PollInterval, so a slow update
// costs few calls. Transient errors are polled through.
func (w writer) waitIdle(ctx context.Context) (config, error) {
	ctx, cancel := context.WithTimeout(ctx, w.p.waitTimeout())
	defer cancel()
	backoff := pollBackoff(w.p.pollInterval())
	first, _ := backoff.Next()
	var cfg config
	err := sleep(ctx, first)
	if err == nil {
		err = retry.Do(ctx, backoff, func(ctx context.Context) error {
			var err error
			cfg, err = w.get(ctx)
			switch {
			case err != nil && transient(err):
				w.p.emit(Event{Kind: EventRetry, Function: w.name, Err: err})
				return retry.RetryableError(err)
			case err != nil:
				return err
			case cfg.status == types.LastUpdateStatusInProgress:
				return retry.RetryableError(errInProgress)
			case cfg.status == types.LastUpdateStatusFailed:
				return fmt.Errorf("the update failed (LastUpdateStatus Failed)")
			}
			return nil
		})
	}
	if err != nil {
		return cfg, fmt.Errorf("waiting for the update to finish: %w", err)
	}
	return cfg, nil
}

var errInProgress = errors.New("the update is still in progress")

// pollBackoff is the delay between two polls: first, then half as long again each time, at most 4×first.
func pollBackoff(first time.Duration) retry.Backoff {
	delay := first
	return retry.BackoffFunc(func() (time.Duration, bool) {
		d := delay
		delay = min(delay*3/2, 4*first)
		return d, false
	})
}

// run reads the function, asks compute for the variables, calls stage (the journal) and writes with the
// RevisionId read, until the write is accepted or fails for good: PreconditionFailed → re-read and recompute;
// ResourceConflict → wait for the running update, then the same; throttling, 5xx and dropped connections (after
// the SDK's own retries) → back off and start again. It returns the last configuration read and whether it wrote.
//
// stage returns, when not nil, what must be done before the write leaves (make the journal's entry durable): it runs
// once the write's turn under the control-plane quota has come, right before it is sent, so the functions staged
// meanwhile share one journal write.
func (w writer) run(ctx context.Context, fn compute, stage func(cfg config, next map[string]string) (beforeSend func() error)) (config, bool, error) {
	backoff := retry.WithMaxRetries(uint64(w.p.maxAttempts()-1),
		retry.WithCappedDuration(w.p.retryMax(), retry.WithJitterPercent(20, retry.NewExponential(w.p.retryBase()))))
	var (
		cfg     config
		fresh   bool // cfg was read by waitIdle and can be used as is
		wrote   bool
		lastCfg config
	)
	err := retry.Do(ctx, backoff, func(ctx context.Context) error {
		if !fresh {
			var err error
			if cfg, err = w.read(ctx); err != nil {
				return retryable(err)
			}
		}
		fresh = false
		lastCfg = cfg
		next, write, err := fn(cfg)
		if err != nil || !write {
			return err
		}
		callCtx := ctx
		if stage != nil {
			if beforeSend := stage(cfg, next); beforeSend != nil {
				callCtx = withBeforeSend(ctx, beforeSend)
			}
		}
		out, err := w.p.Client.UpdateFunctionConfiguration(callCtx, &lambda.UpdateFunctionConfigurationInput{
			FunctionName: aws.String(cfg.arn),
			RevisionId:   aws.String(cfg.revision),
			Environment:  &types.Environment{Variables: next},
		}, w.options()...)
		var (
			precondition *types.PreconditionFailedException
			conflict     *types.ResourceConflictException
		)
		switch {
		case err == nil:
			wrote = true
			lastCfg = config{name: cfg.name, arn: cfg.arn, revision: aws.ToString(out.RevisionId), status: out.LastUpdateStatus, env: next}
			return nil
		case errors.As(err, &precondition):
			w.p.emit(Event{Kind: EventRetry, Function: w.name, Err: err})
			return retry.RetryableError(err)
		case errors.As(err, &conflict):
			w.p.emit(Event{Kind: EventRetry, Function: w.name, Err: err})
			if cfg, err = w.waitIdle(ctx); err != nil {
				return retryable(err)
			}
			fresh = true
			return retry.RetryableError(conflict)
		case transient(err):
			w.p.emit(Event{Kind: EventRetry, Function: w.name, Err: err})
			return retry.RetryableError(err)
		}
		return fmt.Errorf("updating configuration: %w", err)
	})
	if err != nil {
		return lastCfg, wrote, err
	}
	return lastCfg, wrote, nil
}

// retryable marks err for another attempt when it is transient.
func retryable(err error) error {
	if transient(err) {
		return retry.RetryableError(err)
	}
	return err
}

// transient reports errors worth another attempt once the SDK's own retries are spent: throttling, 5xx, a
// dropped connection or a timeout.
func transient(err error) bool {
	var (
		throttled *types.TooManyRequestsException
		sendErr   *smithyhttp.RequestSendError
		netErr    net.Error
		resp      *awshttp.ResponseError
	)
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false
	case errors.As(err, &throttled), errors.As(err, &sendErr), errors.As(err, &netErr):
		return true
	case errors.As(err, &resp):
		return resp.HTTPStatusCode() >= 500 || resp.HTTPStatusCode() == 429
	}
	return false
}
