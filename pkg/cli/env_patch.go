package cli

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/urfave/cli/v2"

	"github.com/stptunnel/stptunnel/pkg/connstr"
	"github.com/stptunnel/stptunnel/pkg/doc"
	"github.com/stptunnel/stptunnel/pkg/lambdaenv"
)

func (a *app) envPatchCommand() *cli.Command {
	return &cli.Command{
		Name:  "patch",
		Usage: "rewrite the bound variables of each function to its tunnel (journalled, RevisionId-checked)",
		Description: "Reads the document on stdin (functions with their bindings, and tunnels), points each bound variable\n" +
			"at its resource's tunnel, and writes the document with \"patches\". Every change is in STATE_DIR/journal.json\n" +
			"before it is written, so `stptunnel env restore` can always put the variables back.",
		Flags:  withGlobals(patchFlags()),
		Action: a.envPatch,
	}
}

func (a *app) envPatch(c *cli.Context) error {
	d, err := a.readDocument()
	if err != nil {
		return err
	}
	concurrency := c.Int(flagConcurrency)
	if concurrency < 1 {
		return usageError("--concurrency must be at least 1, got %d", concurrency)
	}
	plans, err := patchPlans(d)
	if err != nil {
		return asUsage(err)
	}
	dryRun := c.Bool(flagDryRun)
	if len(plans) == 0 {
		a.ui.info("No function to patch: the document has no function with a binding to a tunnelled resource")
		return a.writeDocument(d)
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := a.awsConfig(ctx, c, d.Region())
	if err != nil {
		return err
	}
	lock, err := lockStateDir(stateDir(c)) // the journal is one session's at a time
	if err != nil {
		return err
	}
	defer lock.release()
	journal, err := lambdaenv.OpenJournal(stateDir(c))
	if err != nil {
		return err
	}
	p := &lambdaenv.Patcher{
		Client:      lambda.NewFromConfig(cfg),
		Journal:     journal,
		Concurrency: concurrency,
		Wait:        !c.Bool(flagNoWait),
		DryRun:      dryRun,
		Progress:    a.patchProgress,
	}
	a.announcePatch(p, len(plans))
	res, patchErr := p.Patch(ctx, plans)
	if err := mergePatches(d, res.Patches); err != nil {
		return err
	}
	for _, s := range res.Skipped {
		if err := d.Append(doc.FieldSkipped, s); err != nil {
			return err
		}
	}
	if err := a.finishDocument(d, doc.FieldPatches); err != nil {
		return err
	}
	if patchErr != nil {
		return fmt.Errorf("%w\n  functions already patched stay patched: `stptunnel env restore` puts them back (journal %s)",
			patchErr, journal.Path())
	}
	return nothingPatched(res.Patches, dryRun)
}

// nothingPatched is the error of a step that had functions to patch and patched none of them: it must not look
// like success. Each function's reason was reported as it was skipped.
func nothingPatched(patches []doc.Patch, dryRun bool) error {
	if dryRun {
		return nil
	}
	for _, p := range patches {
		if p.State == doc.PatchApplied {
			return nil
		}
	}
	return errors.New("no function was patched: each was skipped for the reason given above")
}

// patchProgress prints the patch's events in the seed's words. Values are never printed: only names.
func (a *app) patchProgress(e lambdaenv.Event) {
	switch e.Kind {
	case lambdaenv.EventPatched:
		a.ui.ok("Updating Lambda env vars: %s", e.Function)
	case lambdaenv.EventPlanned:
		a.ui.info("Would update Lambda env vars: %s (dry run, nothing written)", e.Function)
	case lambdaenv.EventUpToDate:
		a.ui.info("Lambda env vars already point at the tunnels: %s", e.Function)
	case lambdaenv.EventNothingToPatch:
		a.ui.warn("Skipping %s: nothing to change (%v)", e.Function, e.Err)
	case lambdaenv.EventSkipped:
		a.ui.warn("Skipping %s: %v", e.Function, e.Err)
	}
}

// patchPlans builds one plan per function of the document that has bindings to a resource with a tunnel. Functions
// the document lists as skipped are left out.
func patchPlans(d *doc.Document) ([]lambdaenv.Plan, error) {
	resources, err := d.Resources()
	if err != nil {
		return nil, err
	}
	functions, err := d.Functions()
	if err != nil {
		return nil, err
	}
	tunnels, err := d.Tunnels()
	if err != nil {
		return nil, err
	}
	skipped, err := d.Skipped()
	if err != nil {
		return nil, err
	}
	// Two resources (or two tunnels) of one name would make a binding ambiguous: refuse before any write.
	byName := map[string]doc.Resource{}
	for i, r := range resources {
		if _, dup := byName[r.Name]; dup {
			return nil, &doc.InputError{Where: fmt.Sprintf("resources[%d]", i), Err: fmt.Errorf("resource %q is declared twice", r.Name)}
		}
		byName[r.Name] = r
	}
	targets := map[string]lambdaenv.Target{}
	for i, t := range tunnels {
		if _, dup := targets[t.Resource]; dup {
			return nil, &doc.InputError{Where: fmt.Sprintf("tunnels[%d]", i), Err: fmt.Errorf("resource %q has two tunnels", t.Resource)}
		}
		public, err := connstr.ParseHostPort(t.Public)
		if err != nil {
			return nil, &doc.InputError{Where: fmt.Sprintf("tunnels[%d].public", i), Err: err}
		}
		r, ok := byName[t.Resource]
		if !ok {
			r = doc.Resource{Name: t.Resource, Type: connstr.TypeTCP, Address: t.Local}
		}
		if r.Address == "" && r.URL == "" {
			r.Address = t.Local
		}
		if _, err := lambdaenv.LocalAddress(r); err != nil {
			return nil, &doc.InputError{Where: fmt.Sprintf("tunnels[%d]", i), Err: err}
		}
		targets[t.Resource] = lambdaenv.Target{Resource: r, Public: public}
	}
	skip := map[string]bool{}
	for _, s := range skipped {
		skip[s.Function] = true
	}
	var plans []lambdaenv.Plan
	for _, f := range functions {
		if skip[f.Name] || len(f.Bindings) == 0 {
			continue
		}
		tunnelled := false
		for _, b := range f.Bindings {
			_, ok := targets[b.Resource]
			tunnelled = tunnelled || ok
		}
		if tunnelled {
			plans = append(plans, lambdaenv.Plan{Function: f.Name, ARN: f.ARN, Bindings: f.Bindings, Targets: targets})
		}
	}
	return plans, nil
}

// mergePatches sets the document's "patches": a function patched again replaces its earlier item; others stay.
func mergePatches(d *doc.Document, patches []doc.Patch) error {
	existing, err := d.Patches()
	if err != nil {
		return err
	}
	for _, p := range patches {
		replaced := false
		for i := range existing {
			if existing[i].Function == p.Function {
				existing[i], replaced = p, true
			}
		}
		if !replaced {
			existing = append(existing, p)
		}
	}
	if existing == nil {
		existing = []doc.Patch{}
	}
	return d.Set(doc.FieldPatches, existing)
}

// functionList names functions for a message: "api, worker".
func functionList(errs error) string {
	var names []string
	var joined interface{ Unwrap() []error }
	if errors.As(errs, &joined) {
		for _, e := range joined.Unwrap() {
			var fe *lambdaenv.FunctionError
			if errors.As(e, &fe) {
				names = append(names, fe.Function)
			}
		}
	}
	return strings.Join(names, ", ")
}

// announcePatch says what is about to happen before the longest step of a session: Lambda takes seconds to make
// each update live, and a silent terminal would look stuck.
func (a *app) announcePatch(p *lambdaenv.Patcher, n int) {
	switch {
	case n == 0 || p.DryRun:
	case p.Wait:
		a.ui.info("Updating %s; each is reported once its update is live...", plural(n, "function"))
	default:
		a.ui.info("Updating %s (--no-wait: not waiting for the updates to go live)...", plural(n, "function"))
	}
}
