package bore

import (
	"errors"
	"fmt"
	"syscall"
)

// Causes a caller can test with errors.Is.
var (
	// ErrUnreachable: the bore server could not be reached (name resolution, routing, timeout, refusal).
	ErrUnreachable = errors.New("bore server unreachable")
	// ErrConnectionRefused: nothing listens on the server's control port. It is also ErrUnreachable.
	ErrConnectionRefused = fmt.Errorf("%w: connection refused", ErrUnreachable)

	// ErrAuth: the client and the server disagree about the secret.
	ErrAuth = errors.New("bore authentication failed")
	// ErrInvalidSecret: the server rejected the client's secret.
	ErrInvalidSecret = fmt.Errorf("%w: %s", ErrAuth, errTextInvalidSecret)
	// ErrSecretRequired: the server requires a secret and the client has none.
	ErrSecretRequired = fmt.Errorf("%w: %s", ErrAuth, errTextSecretRequired)
	// ErrSecretNotRequired: the client has a secret and the server did not challenge it.
	ErrSecretNotRequired = fmt.Errorf("%w: expected authentication challenge, but no secret was required", ErrAuth)

	// ErrPortUnavailable: the server could not open the requested (or any) public port.
	ErrPortUnavailable = errors.New("bore server could not open a public port")

	// ErrProtocol: the peer broke the bore protocol (bad frame, unexpected message, handshake timeout).
	ErrProtocol = errors.New("bore protocol error")
	// ErrNoAnswer: the server accepted the connection but sent nothing in time (not a bore server, or a stuck one).
	ErrNoAnswer = fmt.Errorf("%w: no answer from the server", ErrProtocol)
	// ErrFrameTooLong: a frame longer than MaxFrameLength. It is also ErrProtocol.
	ErrFrameTooLong = fmt.Errorf("%w: frame error, invalid byte length", ErrProtocol)

	// ErrLinkLost: an established control connection ended (server gone, heartbeat watchdog fired).
	ErrLinkLost = errors.New("bore control connection lost")
)

// ServerError is an Error frame sent by the server. It unwraps to ErrInvalidSecret, ErrSecretRequired or
// ErrPortUnavailable when the text is one bore sends for those causes.
type ServerError struct {
	Message string
}

func (e *ServerError) Error() string { return "server error: " + e.Message }

func (e *ServerError) Unwrap() error {
	switch e.Message {
	case errTextInvalidSecret:
		return ErrInvalidSecret
	case errTextSecretRequired:
		return ErrSecretRequired
	case errTextPortInUse, errTextPermission, errTextBindFailed, errTextPortNotInRange, errTextNoPortAvailable:
		return ErrPortUnavailable
	}
	return nil
}

// DialError is a failure to connect to an address. It is ErrUnreachable, and ErrConnectionRefused when the
// peer refused the connection.
type DialError struct {
	Addr string
	Err  error
}

func (e *DialError) Error() string { return fmt.Sprintf("could not connect to %s: %v", e.Addr, e.Err) }

func (e *DialError) Unwrap() error { return e.Err }

func (e *DialError) Is(target error) bool {
	switch target {
	case ErrUnreachable:
		return true
	case ErrConnectionRefused:
		return errors.Is(e.Err, syscall.ECONNREFUSED)
	}
	return false
}
