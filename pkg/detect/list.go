package detect

import (
	"context"

	"github.com/stptunnel/stptunnel/pkg/doc"
)

// Listed is a deployed function in scope, as the listing read it.
type Listed struct {
	Name, ARN string
	// Env is its variables (nil when Unreadable).
	Env map[string]string
	// Unreadable: its variables cannot be read (KMS).
	Unreadable bool
}

// List returns the deployed functions a scope selects, read the way detect reads them (ListFunctions, or
// GetFunctionConfiguration per named function), and the skips of functions named that are not deployed or cannot
// be read. env restore and env status use it to find the functions that carry a session marker. A --stack that
// does not exist is a *StackNotFoundError.
func List(ctx context.Context, clients Clients, region string, scope Scope) ([]Listed, []doc.Skip, error) {
	r := &run{Options: Options{Region: region, Scope: scope}, lambda: clients.Lambda, cfn: clients.CloudFormation}
	fns, err := r.inScope(ctx)
	if err != nil {
		return nil, nil, err
	}
	out := make([]Listed, 0, len(fns))
	for _, f := range fns {
		out = append(out, Listed{Name: f.name, ARN: f.arn, Env: f.env, Unreadable: f.envError != nil})
	}
	return out, r.result.Skipped, nil
}
