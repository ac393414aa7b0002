package tunnel

import (
	"errors"
	"fmt"

	"github.com/stptunnel/stptunnel/pkg/bore"
)

// Causes of a start failure, as Cause names them in messages.
const (
	CauseRefused     = "connection refused"
	CauseUnreachable = "unreachable"
	CauseAuth        = "authentication failed"
	CausePort        = "no public port available"
	CauseNoAnswer    = "no answer"
	CauseOther       = "error"
)

// Cause names why a tunnel could not start, from the errors of pkg/bore (which the external engine maps its
// output to as well).
func Cause(err error) string {
	switch {
	case errors.Is(err, bore.ErrConnectionRefused):
		return CauseRefused
	case errors.Is(err, bore.ErrUnreachable):
		return CauseUnreachable
	case errors.Is(err, bore.ErrAuth):
		return CauseAuth
	case errors.Is(err, bore.ErrPortUnavailable):
		return CausePort
	case errors.Is(err, bore.ErrNoAnswer):
		return CauseNoAnswer
	}
	return CauseOther
}

// Retryable reports whether a start failure may go away by itself: everything but a secret mismatch.
func Retryable(err error) bool {
	return !errors.Is(err, bore.ErrAuth)
}

// hint is what the user can do about a cause.
func hint(cause string) string {
	switch cause {
	case CauseRefused:
		return "is a bore server running there, on that control port?"
	case CauseUnreachable:
		return "check the address and your network"
	case CauseAuth:
		return "check --secret / BORE_SECRET"
	case CausePort:
		return "the server has no free port in its range"
	case CauseNoAnswer:
		return "is it a bore server, on that control port?"
	}
	return ""
}

// Describe says in plain words why a server did not take a tunnel: once, without the error chain's repetitions.
func Describe(err error) string {
	switch {
	case errors.Is(err, bore.ErrSecretRequired):
		return "it requires a secret, and none was given (give --secret, BORE_SECRET or HOST#VARIABLE)"
	case errors.Is(err, bore.ErrSecretNotRequired):
		return "it sent no authentication challenge: it needs no secret, or is not a bore server"
	case errors.Is(err, bore.ErrAuth):
		return "it refused the secret (check --secret, BORE_SECRET or HOST#VARIABLE)"
	case errors.Is(err, bore.ErrNoAnswer):
		return "it accepted the connection but sent nothing (is it a bore server, on that control port?)"
	}
	cause := Cause(err)
	msg := cause
	if h := hint(cause); h != "" {
		msg += " (" + h + ")"
	}
	return msg + ": " + err.Error()
}

// StartError is a tunnel that could not be opened.
type StartError struct {
	Resource string
	Server   string
	Attempts int
	Err      error
}

func (e *StartError) Error() string {
	attempts := "1 attempt"
	if e.Attempts != 1 {
		attempts = fmt.Sprintf("%d attempts", e.Attempts)
	}
	return fmt.Sprintf("opening the tunnel for %s: bore server %s, after %s: %s", e.Resource, e.Server, attempts, Describe(e.Err))
}

func (e *StartError) Unwrap() error { return e.Err }

// LocalError is a resource whose local service does not accept connections.
type LocalError struct {
	Resource string
	Address  string
	Err      error
}

func (e *LocalError) Error() string {
	return fmt.Sprintf("%s: nothing accepts connections on %s (%v): start it, then try again", e.Resource, e.Address, e.Err)
}

func (e *LocalError) Unwrap() error { return e.Err }
