package awssim

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Quotas are the request rates the emulator enforces on the Lambda API, as
// Lambda enforces them per account and region (an emulator is one account in
// one region). The zero value is Lambda's defaults (LambdaQuotas).
//
// Each rate is a token bucket that holds one second of requests: a burst of
// ControlPlane calls passes at once, then ControlPlane per second. A request
// over the quota is answered 429 TooManyRequestsException, Reason
// CallerRateLimitExceeded, with a Retry-After header (whole seconds until the
// bucket holds a token again, at least 1), and counted by Throttled, not Calls.
type Quotas struct {
	// ControlPlane is the rate shared by every Lambda API except Invoke,
	// GetFunction and GetPolicy: ListFunctions, GetFunctionConfiguration and
	// UpdateFunctionConfiguration here. Requests per second; 0 takes Lambda's 15.
	ControlPlane float64
	// GetFunction is GetFunction's own rate, requests per second; 0 takes Lambda's 100.
	GetFunction float64
	// Off enforces no quota at all, for tests that load the emulator beyond
	// what an account allows.
	Off bool
}

// LambdaQuotas are Lambda's default quotas: 15 control-plane requests per
// second, 100 GetFunction requests per second. Neither can be raised.
var LambdaQuotas = Quotas{ControlPlane: 15, GetFunction: 100}

// withDefaults fills the zero rates with Lambda's.
func (q Quotas) withDefaults() Quotas {
	if q.ControlPlane <= 0 {
		q.ControlPlane = LambdaQuotas.ControlPlane
	}
	if q.GetFunction <= 0 {
		q.GetFunction = LambdaQuotas.GetFunction
	}
	return q
}

// String is the spec ParseQuotas reads back.
func (q Quotas) String() string {
	if q.Off {
		return "off"
	}
	q = q.withDefaults()
	return fmt.Sprintf("control=%g,getfunction=%g", q.ControlPlane, q.GetFunction)
}

// ParseQuotas reads the quota spec of the awssim script command's -quotas flag:
// "lambda" (Lambda's defaults), "off", or comma-separated control=N and
// getfunction=N (requests per second; an absent one takes Lambda's default).
func ParseQuotas(spec string) (Quotas, error) {
	switch spec = strings.TrimSpace(spec); spec {
	case "lambda", "":
		return LambdaQuotas, nil
	case "off":
		return Quotas{Off: true}, nil
	}
	var q Quotas
	for item := range strings.SplitSeq(spec, ",") {
		key, value, ok := strings.Cut(strings.TrimSpace(item), "=")
		rate, err := strconv.ParseFloat(value, 64)
		switch {
		case !ok:
			return Quotas{}, fmt.Errorf("quotas %q: %q is not KEY=RATE (want lambda, off, or control=N,getfunction=N)", spec, item)
		case err != nil || rate <= 0 || math.IsInf(rate, 0):
			return Quotas{}, fmt.Errorf("quotas %q: %s: want a positive number of requests per second", spec, key)
		case key == "control":
			q.ControlPlane = rate
		case key == "getfunction":
			q.GetFunction = rate
		default:
			return Quotas{}, fmt.Errorf("quotas %q: unknown key %q (want control or getfunction)", spec, key)
		}
	}
	return q.withDefaults(), nil
}

// quotaNone, quotaControlPlane and quotaGetFunction name the bucket an operation draws from.
const (
	quotaNone = iota
	quotaControlPlane
	quotaGetFunction
)

// quotaOf is the bucket of a Lambda operation: Invoke (and GetPolicy, not
// emulated) are outside the control-plane quota, GetFunction has its own.
func quotaOf(op string, proto protocol) int {
	switch {
	case proto != protoLambda, op == "Invoke", op == "GetPolicy":
		return quotaNone
	case op == "GetFunction":
		return quotaGetFunction
	}
	return quotaControlPlane
}

// bucket is a token bucket of rate tokens per second holding at most rate
// tokens (one second's worth). Guarded by Server.mu.
type bucket struct {
	rate   float64
	tokens float64
	last   time.Time
}

func newBucket(rate float64) *bucket { return &bucket{rate: rate, tokens: rate} }

// take spends a token if the bucket holds one; otherwise it reports how long
// until it will.
func (b *bucket) take(now time.Time) (wait time.Duration, ok bool) {
	if !b.last.IsZero() && now.After(b.last) {
		b.tokens = min(b.rate, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	if now.After(b.last) {
		b.last = now
	}
	if b.tokens >= 1-1e-6 { // a nanosecond's rounding of the refill is no reason to refuse
		b.tokens--
		return 0, true
	}
	return time.Duration((1 - b.tokens) / b.rate * float64(time.Second)), false
}

// SetQuotas replaces the quotas enforced from now on; the buckets start full.
func (s *Server) SetQuotas(q Quotas) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setQuotas(q)
}

// setQuotas installs q. Callers hold s.mu (or own s, in New).
func (s *Server) setQuotas(q Quotas) {
	s.quotas = q
	s.buckets = nil
	if q.Off {
		return
	}
	q = q.withDefaults()
	s.quotas = q
	s.buckets = map[int]*bucket{quotaControlPlane: newBucket(q.ControlPlane), quotaGetFunction: newBucket(q.GetFunction)}
}

// Quotas returns the quotas in force.
func (s *Server) Quotas() Quotas {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.quotas
}

// Throttled is how many requests of operation op the quotas refused (429).
// They are not counted in Calls.
func (s *Server) Throttled(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.throttled[op]
}

// admit spends a token of op's bucket. When the bucket is empty it counts the
// refusal and returns the 429 to answer. Callers hold s.mu.
func (s *Server) admit(op string, proto protocol) (apiError, bool) {
	b := s.buckets[quotaOf(op, proto)]
	if b == nil {
		return apiError{}, true
	}
	wait, ok := b.take(s.clock())
	if ok {
		return apiError{}, true
	}
	s.throttled[op]++
	return throttleError(int(math.Ceil(wait.Seconds()))), false
}

// throttleError is Lambda's 429 for a caller over its request rate.
func throttleError(retryAfter int) apiError {
	return apiError{status: 429, code: "TooManyRequestsException", message: "Rate exceeded",
		reason: "CallerRateLimitExceeded", retryAfter: max(retryAfter, 1)}
}
