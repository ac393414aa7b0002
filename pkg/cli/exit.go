package cli

import (
	"errors"
	"fmt"

	"github.com/stptunnel/stptunnel/pkg/doc"
)

// Exit codes (DESIGN.md §7). They are decided here and nowhere else.
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

// leftPatched marks a session that ended with functions still patched: exit 3.
func leftPatched(err error) error {
	return &exitError{code: ExitPatched, err: err}
}

// exitWith returns an error that makes Main exit with code and print nothing more (the command already spoke).
func exitWith(code int) error {
	return &exitError{code: code, err: errSilent}
}

var errSilent = errors.New("")

// errNotBuilt is returned by commands whose implementation has not landed yet.
func errNotBuilt(command string, issue int) error {
	return fmt.Errorf("stptunnel %s is not built yet (tracked in issue #%d): this version cannot run it", command, issue)
}

// exitCode maps an error to the process exit code.
func exitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var coded interface{ ExitCode() int }
	if errors.As(err, &coded) {
		return coded.ExitCode()
	}
	var input *doc.InputError
	if errors.As(err, &input) {
		return ExitUsage
	}
	return ExitFailed
}
