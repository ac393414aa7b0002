package cli

import (
	"errors"
	"fmt"

	"github.com/stptunnel/stptunnel/pkg/doc"
	"github.com/stptunnel/stptunnel/pkg/session"
)

// Exit codes (CONTRACT.md §6). They are decided here and nowhere else.
const (
	ExitOK      = 0 // done
	ExitFailed  = 1 // failed
	ExitUsage   = 2 // bad usage or bad input: nothing was changed
	ExitPatched = 3 // the session ended with functions still patched: the journal is kept
)

// exitError carries an exit code with the error that caused it.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }
func (e *exitError) ExitCode() int { return e.code }

// usageError marks bad usage or bad input: exit 2, and the command has changed nothing.
func usageError(format string, args ...any) error {
	return &exitError{code: ExitUsage, err: fmt.Errorf(format, args...)}
}

// asUsage marks an existing error as bad input.
func asUsage(err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: ExitUsage, err: err}
}

// exitWith returns an error that makes Main exit with code and print nothing more (the command already spoke).
func exitWith(code int) error {
	return &exitError{code: code, err: errSilent}
}

var errSilent = errors.New("")

// silent reports whether err was said already: Main exits with its code and prints nothing.
func silent(err error) bool {
	var reported *session.Reported
	var exit *session.ExitError
	return errors.Is(err, errSilent) || errors.As(err, &reported) || errors.As(err, &exit)
}

// exitCode maps an error to the process exit code.
func exitCode(err error) int {
	var (
		coded   interface{ ExitCode() int }
		exit    *session.ExitError
		patched *session.LeftPatchedError
		input   *session.InputError
		docErr  *doc.InputError
	)
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &coded):
		return coded.ExitCode()
	case errors.As(err, &exit):
		return exit.Code
	case errors.As(err, &patched):
		return ExitPatched
	case errors.As(err, &input), errors.As(err, &docErr):
		return ExitUsage
	}
	return ExitFailed
}
