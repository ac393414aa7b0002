package awssim

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// FaultKind is how an injected fault answers.
type FaultKind string

// Fault kinds. Each answers in the shape of the operation's protocol.
const (
	FaultNone FaultKind = ""
	// FaultThrottle: Lambda 429 TooManyRequestsException with Retry-After;
	// CloudFormation 400 Throttling; EC2 503 RequestLimitExceeded. The SDK retries it.
	FaultThrottle FaultKind = "throttle"
	// FaultConflict: Lambda 409 ResourceConflictException ("An update is in
	// progress for resource: ARN"); CloudFormation 400 OperationInProgressException;
	// EC2 400 IncorrectState. The SDK does not retry it.
	FaultConflict FaultKind = "conflict"
	// FaultServerError: Lambda 500 ServiceException; CloudFormation 500
	// InternalFailure; EC2 500 InternalError. The SDK retries it.
	FaultServerError FaultKind = "error"
	// FaultDrop: the connection is closed (reset) without an answer.
	FaultDrop FaultKind = "drop"
)

// Fault is injected into one operation by SetFault. The next Next calls fail
// with Kind; after those, each call fails with probability Rate (drawn from
// the seeded RNG). Latency delays every call, failing or not.
type Fault struct {
	Kind    FaultKind
	Next    int
	Rate    float64
	Latency time.Duration
	// RetryAfter is the Retry-After header of a Lambda throttle, in whole
	// seconds (1 when zero).
	RetryAfter int
}

// SetFault injects f into operation op ("ListFunctions", "UpdateFunctionConfiguration",
// "ListStackResources", "DescribeRouteTables", ...), replacing what op had.
// op "*" applies to every operation that has no fault of its own. The zero
// Fault removes it.
func (s *Server) SetFault(op string, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f == (Fault{}) {
		delete(s.faults, op)
		return
	}
	s.faults[op] = f
}

// ParseFault reads the fault spec used by the awssim-fault script command: comma-separated
// items, one a kind (throttle, conflict, error, drop, none) and the others
// key=value: next=N, rate=0..1, latency=DURATION, retry-after=SECONDS.
// Examples: "throttle,next=2", "error,rate=0.25", "latency=200ms", "none".
func ParseFault(spec string) (Fault, error) {
	var f Fault
	for item := range strings.SplitSeq(spec, ",") {
		item = strings.TrimSpace(item)
		key, value, hasValue := strings.Cut(item, "=")
		if !hasValue {
			switch kind := FaultKind(item); kind {
			case FaultThrottle, FaultConflict, FaultServerError, FaultDrop:
				f.Kind = kind
			case "none", "":
			default:
				return Fault{}, fmt.Errorf("fault %q: unknown kind %q (want throttle, conflict, error, drop or none)", spec, item)
			}
			continue
		}
		var err error
		switch key {
		case "next":
			f.Next, err = strconv.Atoi(value)
			if err == nil && f.Next < 0 {
				err = fmt.Errorf("negative")
			}
		case "rate":
			f.Rate, err = strconv.ParseFloat(value, 64)
			if err == nil && (f.Rate < 0 || f.Rate > 1) {
				err = fmt.Errorf("not in 0..1")
			}
		case "latency":
			f.Latency, err = time.ParseDuration(value)
		case "retry-after":
			f.RetryAfter, err = strconv.Atoi(value)
		default:
			err = fmt.Errorf("unknown key (want next, rate, latency or retry-after)")
		}
		if err != nil {
			return Fault{}, fmt.Errorf("fault %q: %s: %w", spec, key, err)
		}
	}
	if f.Kind != FaultNone && f.Next == 0 && f.Rate == 0 {
		// A bare kind fails every call: what "throttle" alone reads as.
		f.Rate = 1
	}
	return f, nil
}

// faultError is the error an injected fault answers with, per protocol.
func faultError(proto protocol, f Fault, resourceARN string) apiError {
	if proto == protoLambda {
		switch f.Kind {
		case FaultThrottle:
			return throttleError(f.RetryAfter)
		case FaultConflict:
			return conflictError(resourceARN)
		default:
			return apiError{status: 500, code: "ServiceException", service: true,
				message: "Lambda encountered an internal error (injected by awssim)."}
		}
	}
	return queryFaultErrors[proto][f.Kind]
}

// queryFaultErrors are the injected errors of the XML protocols, by kind.
var queryFaultErrors = map[protocol]map[FaultKind]apiError{
	protoCloudFormation: {
		FaultThrottle:    {status: 400, code: "Throttling", message: "Rate exceeded"},
		FaultConflict:    {status: 400, code: "OperationInProgressException", message: "Another operation is currently in progress (injected by awssim)."},
		FaultServerError: {status: 500, code: "InternalFailure", service: true, message: "An internal error occurred (injected by awssim)."},
	},
	protoEC2: {
		FaultThrottle:    {status: 503, code: "RequestLimitExceeded", message: "Request limit exceeded."},
		FaultConflict:    {status: 400, code: "IncorrectState", message: "The resource is in an incorrect state (injected by awssim)."},
		FaultServerError: {status: 500, code: "InternalError", service: true, message: "An internal error has occurred (injected by awssim)."},
	},
}

func conflictError(resourceARN string) apiError {
	return apiError{status: 409, code: "ResourceConflictException",
		message: "The operation cannot be performed at this time. An update is in progress for resource: " + resourceARN}
}
