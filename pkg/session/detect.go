package session

import (
	"context"
	"errors"
	"regexp"
	"strings"

	"github.com/stptunnel/stptunnel/pkg/connstr"
	"github.com/stptunnel/stptunnel/pkg/detect"
	"github.com/stptunnel/stptunnel/pkg/doc"
	"github.com/stptunnel/stptunnel/pkg/lambdaenv"
)

// DetectOptions are detect's inputs beyond the document.
type DetectOptions struct {
	Locals []Local
	// Maps are --map ENV=RESOURCE, as given; they are checked against the resources.
	Maps  []string
	Scope detect.Scope
	VPC   detect.VPCMode
	// Public is the longest public address a tunnel could get, as the functions see it (the tunnel host, else the
	// longest server host, with port 65535): detect sizes the patched variables with it.
	Public connstr.HostPort
	// TunnelHost is the host the functions will reach the bore server by (--tunnel-host, else the first --to
	// server's host): detect checks functions in a VPC against it.
	TunnelHost string
}

// Detect enriches d with "region", the declared resources, "functions" and "skipped". Every input is checked
// before the first AWS call.
func Detect(ctx context.Context, d *doc.Document, opts DetectOptions, env Env) error {
	resources, err := Resources(d, opts.Locals)
	if err != nil {
		return err
	}
	if len(resources) == 0 {
		return badInput(`no local resource: give --local NAME[:TYPE]=URL or a document with "resources"`)
	}
	maps, err := parseMaps(opts.Maps, resources)
	if err != nil {
		return err
	}
	cfg, err := env.aws(ctx, d.Region())
	if err != nil {
		return err
	}
	res, err := detect.Run(ctx, detect.NewClients(cfg), detect.Options{Region: cfg.Region, Resources: resources, Maps: maps,
		Scope: opts.Scope, VPC: opts.VPC, Public: opts.Public, TunnelHost: opts.TunnelHost})
	var notFound *detect.StackNotFoundError
	if errors.As(err, &notFound) {
		return badInput("--stack %s: no such stack in %s", notFound.Stack, cfg.Region)
	}
	if err != nil {
		return err
	}
	for _, f := range res.Functions {
		decisions := res.Decisions[f.Name]
		for i, b := range f.Bindings {
			ev := Bound{Function: f.Name, Binding: b}
			if i < len(decisions) {
				ev.Decision = decisions[i]
			}
			env.report(ev)
		}
	}
	for _, w := range res.Warnings {
		env.report(Warning{Message: w})
	}
	for _, s := range res.Skipped {
		env.report(Skipped{Skip: s})
	}
	env.report(Found{Functions: len(res.Functions), Scanned: res.Scanned})
	functions, skipped := res.Functions, res.Skipped
	if functions == nil {
		functions = []doc.Function{}
	}
	if skipped == nil {
		skipped = []doc.Skip{}
	}
	for _, set := range []struct {
		field string
		value any
	}{{doc.FieldRegion, cfg.Region}, {doc.FieldFunctions, functions}, {doc.FieldSkipped, skipped}} {
		if err := d.Set(set.field, set.value); err != nil {
			return err
		}
	}
	return nil
}

// envName is what Lambda accepts as a variable name.
var envName = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_]+$`)

// parseMaps parses --map ENV=RESOURCE against the known resources. A malformed entry, an unknown resource or a
// variable mapped twice is bad input naming the flag.
func parseMaps(specs []string, resources []doc.Resource) ([]detect.Map, error) {
	var out []detect.Map
	for _, spec := range specs {
		env, res, ok := strings.Cut(spec, "=")
		env, res = strings.TrimSpace(env), strings.TrimSpace(res)
		switch {
		case !ok || env == "" || res == "":
			return nil, badInput("--map %q: want ENV=RESOURCE", spec)
		case !envName.MatchString(env):
			return nil, badInput("--map %q: %q is not a Lambda variable name (letters, digits and _, starting with a letter)", spec, env)
		case env == lambdaenv.MarkerKey:
			return nil, badInput("--map %q: %s is stptunnel's session marker, not a variable to bind", spec, env)
		case !hasResource(resources, res):
			return nil, badInput("--map %q: no resource named %q (declare it with --local %s=URL)", spec, res, res)
		}
		for _, m := range out {
			if m.Env == env {
				return nil, badInput("--map %q: %s is already mapped to %s", spec, env, m.Resource)
			}
		}
		out = append(out, detect.Map{Env: env, Resource: res})
	}
	return out, nil
}

func hasResource(resources []doc.Resource, name string) bool {
	for _, r := range resources {
		if r.Name == name {
			return true
		}
	}
	return false
}
