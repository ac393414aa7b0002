package cli

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/stptunnel/stptunnel/pkg/connstr"
	"github.com/stptunnel/stptunnel/pkg/detect"
	"github.com/stptunnel/stptunnel/pkg/doc"
)

// resources returns the local resources of a command: those of the document, then those of --local, each
// validated, with Type and Address filled in. New --local resources are appended to the document (the resources
// it already holds stay byte for byte), so the next step sees them. Bad input is a usage error (exit 2) naming
// the document field or the flag:
//   - a resource that does not parse (connstr.NewLocal / connstr.ParseLocal);
//   - two resources with the same name, or whose names give the same Stacktape variables (db and DB);
//
// except that a --local identical to a resource of the document (name, type and address) is accepted and adds
// nothing, so `detect --local X | tunnel open --local X` works.
func (a *app) resources(c *cli.Context, d *doc.Document) ([]doc.Resource, error) {
	inDoc, err := d.Resources()
	if err != nil {
		return nil, asUsage(err)
	}
	var out []doc.Resource
	seen := map[string]int{} // SnakeName → index in out
	for i, r := range inDoc {
		where := fmt.Sprintf("bad document (stdin: resources[%d])", i)
		checked, err := checkResource(r)
		if err != nil {
			return nil, usageError("%s: %v", where, err)
		}
		if j, dup := seen[connstr.SnakeName(r.Name)]; dup {
			return nil, usageError("%s: %s", where, sameName(checked, out[j]))
		}
		seen[connstr.SnakeName(r.Name)] = len(out)
		out = append(out, checked)
	}
	for _, spec := range c.StringSlice(flagLocal) {
		l, err := connstr.ParseLocal(spec)
		if err != nil {
			return nil, asUsage(err) // names --local and the spec, redacted
		}
		// The URL joins the document this command prints: under GitHub Actions its password is masked first.
		a.ui.addSecret(secretsIn(l.URL)...)
		r := doc.Resource{Name: l.Name, Type: l.Type, URL: l.URL, Address: l.Address.String()}
		if j, dup := seen[connstr.SnakeName(r.Name)]; dup {
			if j < len(inDoc) && out[j].Name == r.Name && out[j].Type == r.Type && out[j].Address == r.Address {
				continue
			}
			return nil, usageError("--local %q: %s", connstr.Redact(spec), sameName(r, out[j]))
		}
		seen[connstr.SnakeName(r.Name)] = len(out)
		out = append(out, r)
		if err := d.Append(doc.FieldResources, r); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// sameName explains why r clashes with an earlier resource.
func sameName(r, earlier doc.Resource) string {
	if r.Name == earlier.Name {
		return fmt.Sprintf("resource %q is declared twice", r.Name)
	}
	return fmt.Sprintf("resources %q and %q would both use the variables STP_%s_*", earlier.Name, r.Name, connstr.SnakeName(r.Name))
}

// checkResource validates a resource of the document and fills in its type and address.
func checkResource(r doc.Resource) (doc.Resource, error) {
	if r.URL == "" {
		if r.Address == "" {
			return r, fmt.Errorf("resource %q has neither url nor address", r.Name)
		}
		l, err := connstr.NewLocal(r.Name, r.Type, r.Address)
		if err != nil {
			return r, err
		}
		r.Type = l.Type
		return r, nil
	}
	l, err := connstr.NewLocal(r.Name, r.Type, r.URL)
	if err != nil {
		return r, err
	}
	if r.Address != "" {
		hp, err := connstr.ParseHostPort(r.Address)
		if err != nil {
			return r, fmt.Errorf("resource %q: %w", r.Name, err)
		}
		if hp != l.Address {
			return r, fmt.Errorf("resource %q: address %s is not the address of its url (%s)", r.Name, hp, l.Address)
		}
	}
	r.Type, r.Address = l.Type, l.Address.String()
	return r, nil
}

// envName is what Lambda accepts as a variable name.
var envName = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_]+$`)

// parseMaps parses --map ENV=RESOURCE against the known resources. A malformed entry, an unknown resource or a
// variable mapped twice is a usage error naming the flag.
func parseMaps(c *cli.Context, resources []doc.Resource) ([]detect.Map, error) {
	var out []detect.Map
	for _, spec := range c.StringSlice(flagMap) {
		env, res, ok := strings.Cut(spec, "=")
		env, res = strings.TrimSpace(env), strings.TrimSpace(res)
		switch {
		case !ok || env == "" || res == "":
			return nil, usageError("--map %q: want ENV=RESOURCE", spec)
		case !envName.MatchString(env):
			return nil, usageError("--map %q: %q is not a Lambda variable name (letters, digits and _, starting with a letter)", spec, env)
		case !hasResource(resources, res):
			return nil, usageError("--map %q: no resource named %q (declare it with --local %s=URL)", spec, res, res)
		}
		for _, m := range out {
			if m.Env == env {
				return nil, usageError("--map %q: %s is already mapped to %s", spec, env, m.Resource)
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
