package cli

import (
	"errors"
	"net"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/stptunnel/stptunnel/pkg/connstr"
	"github.com/stptunnel/stptunnel/pkg/detect"
	"github.com/stptunnel/stptunnel/pkg/doc"
)

func (a *app) detectCommand() *cli.Command {
	return &cli.Command{
		Name:  "detect",
		Usage: "find the deployed functions that reference a local resource",
		Description: "Reads the document on stdin (or starts an empty one), adds the resources given with --local, lists\n" +
			"the functions in scope and writes the document with \"functions\" (their bindings) and \"skipped\".\n" +
			"--function selects exactly the functions named; --stack and --prefix may be combined.",
		Flags:  withGlobals([]cli.Flag{localFlag()}, scopeFlags()),
		Action: a.detectAction,
	}
}

func (a *app) detectAction(c *cli.Context) error {
	d, err := a.readDocument()
	if err != nil {
		return err
	}
	if err := a.detect(c, d); err != nil {
		return err
	}
	return a.finishDocument(d, doc.FieldFunctions, doc.FieldSkipped)
}

// detect enriches d with "region", the --local resources, "functions" and "skipped". Every flag and the document
// are checked before the first AWS call. `dev` runs it as its first step.
func (a *app) detect(c *cli.Context, d *doc.Document) error {
	opts, err := a.detectOptions(c, d)
	if err != nil {
		return err
	}
	a.maskDocument(d)
	cfg, err := a.awsConfig(c.Context, c, d.Region())
	if err != nil {
		return err
	}
	opts.Region = cfg.Region
	res, err := detect.Run(c.Context, detect.NewClients(cfg), opts)
	var notFound *detect.StackNotFoundError
	if errors.As(err, &notFound) {
		return usageError("--stack %s: no such stack in %s", notFound.Stack, cfg.Region)
	}
	if err != nil {
		return err
	}
	for _, f := range res.Functions {
		decisions := res.Decisions[f.Name]
		for i, b := range f.Bindings {
			if i < len(decisions) {
				a.ui.info("%s: %s → %s (%s): %s", f.Name, b.Env, b.Resource, b.Via, decisions[i].Describe())
			} else {
				a.ui.info("%s: %s → %s (%s)", f.Name, b.Env, b.Resource, b.Via)
			}
		}
	}
	for _, w := range res.Warnings {
		a.ui.warn("%s", w)
	}
	for _, s := range res.Skipped {
		a.ui.warn("Skipping %s: %s", s.Function, s.Message)
	}
	a.warnSkipped(res.Skipped)
	if len(res.Functions) == 0 {
		a.ui.warn("No function uses a local resource (scanned %d)", res.Scanned)
	} else {
		a.ui.ok("Found %s using local resources (scanned %d)", plural(len(res.Functions), "function"), res.Scanned)
	}
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

// detectOptions reads the resources, --map, the scope and --vpc: all of it is bad input (exit 2) when wrong.
func (a *app) detectOptions(c *cli.Context, d *doc.Document) (detect.Options, error) {
	resources, err := a.resources(c, d)
	if err != nil {
		return detect.Options{}, err
	}
	if len(resources) == 0 {
		return detect.Options{}, usageError(`no local resource: give --local NAME[:TYPE]=URL or a document with "resources"`)
	}
	mapped, err := parseMaps(c, resources)
	if err != nil {
		return detect.Options{}, err
	}
	vpc, err := detect.ParseVPCMode(c.String(flagVPC))
	if err != nil {
		return detect.Options{}, usageError("--vpc: %v", err)
	}
	scope := detect.Scope{Prefix: c.String(flagPrefix), Stack: strings.TrimSpace(c.String(flagStack))}
	for _, f := range c.StringSlice(flagFunction) {
		if f = strings.TrimSpace(f); f == "" {
			return detect.Options{}, usageError("--function: empty name")
		}
		if !slices.Contains(scope.Functions, f) {
			scope.Functions = append(scope.Functions, f)
		}
	}
	if len(scope.Functions) > 0 && (scope.Prefix != "" || scope.Stack != "") {
		return detect.Options{}, usageError("--function selects exactly the functions named: it cannot be combined with --prefix or --stack")
	}
	return detect.Options{Resources: resources, Maps: mapped, Scope: scope, VPC: vpc, Public: a.worstPublic(c)}, nil
}

// worstPublic is the longest public address a tunnel could get: the bore server's host (--to when the command
// has it, else BORE_SERVER, else bore.pub) with a five-digit port. Detect sizes patched variables with it.
func (a *app) worstPublic(c *cli.Context) connstr.HostPort {
	server := ""
	for _, ctx := range c.Lineage() {
		if slices.Contains(ctx.FlagNames(), flagTo) {
			server = ctx.String(flagTo)
			break
		}
	}
	if server == "" {
		server = a.getenv(envBoreSrv)
	}
	server = strings.TrimSpace(server)
	if host, _, err := net.SplitHostPort(server); err == nil {
		server = host
	}
	if server == "" {
		server = defaultBoreServer
	}
	return connstr.HostPort{Host: server, Port: 65535}
}
