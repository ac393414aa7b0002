package session

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Env is what every step takes from its surroundings.
type Env struct {
	// AWSConfig returns the SDK configuration; region is the document's region, for when nothing else gives one.
	// The command line loads the SDK's default chain with --region and --profile; demo returns its emulator's.
	AWSConfig func(ctx context.Context, region string) (aws.Config, error)
	// StateDir holds the journal, the lock and the detached session's record.
	StateDir string
	// Report receives the steps' events, one at a time. Nil discards them.
	Report func(Event)
}

func (e Env) report(ev Event) {
	if e.Report != nil {
		e.Report(ev)
	}
}

func (e Env) aws(ctx context.Context, region string) (aws.Config, error) {
	if e.AWSConfig == nil {
		return aws.Config{}, errors.New("no AWS configuration")
	}
	return e.AWSConfig(ctx, region)
}

// InputError is bad input: a document, a flag or a combination that cannot be acted on. Nothing was changed.
type InputError struct{ Err error }

func (e *InputError) Error() string { return e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }

func badInput(format string, args ...any) error {
	return &InputError{Err: fmt.Errorf(format, args...)}
}

// asInput marks err as bad input.
func asInput(err error) error {
	if err == nil {
		return nil
	}
	return &InputError{Err: err}
}

// LeftPatchedError is the end of a session that leaves functions patched: the journal keeps them, and
// `stptunnel env restore` finishes the job.
type LeftPatchedError struct{ Err error }

func (e *LeftPatchedError) Error() string { return e.Err.Error() }
func (e *LeftPatchedError) Unwrap() error { return e.Err }
