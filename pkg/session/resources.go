package session

import (
	"fmt"

	"github.com/stptunnel/stptunnel/pkg/connstr"
	"github.com/stptunnel/stptunnel/pkg/doc"
)

// Local is a resource declared on the command line (--local), with the words that name it in a message (the
// flag and its value, password redacted).
type Local struct {
	connstr.Local
	Flag string
}

// Resources returns the local resources of a step: those of the document, then locals (from --local), each
// validated, with Type and Address filled in. New locals are appended to the document (the resources it already
// holds stay byte for byte), so the next step sees them. Bad input is an *InputError naming the document field
// or the flag:
//   - a resource of the document that does not parse;
//   - two resources with the same name, or whose names give the same Stacktape variables (db and DB);
//
// except that a local identical to a resource of the document (name, type and address) is accepted and adds
// nothing, so `detect --local X | tunnel open --local X` works.
func Resources(d *doc.Document, locals []Local) ([]doc.Resource, error) {
	inDoc, err := d.Resources()
	if err != nil {
		return nil, asInput(err)
	}
	var out []doc.Resource
	seen := map[string]int{} // SnakeName → index in out
	for i, r := range inDoc {
		where := fmt.Sprintf("bad document (stdin: resources[%d])", i)
		checked, err := checkResource(r)
		if err != nil {
			return nil, badInput("%s: %v", where, err)
		}
		if j, dup := seen[connstr.SnakeName(r.Name)]; dup {
			return nil, badInput("%s: %s", where, sameName(checked, out[j]))
		}
		seen[connstr.SnakeName(r.Name)] = len(out)
		out = append(out, checked)
	}
	for _, l := range locals {
		r := doc.Resource{Name: l.Name, Type: l.Type, URL: l.URL, Address: l.Address.String()}
		if j, dup := seen[connstr.SnakeName(r.Name)]; dup {
			if j < len(inDoc) && out[j].Name == r.Name && out[j].Type == r.Type && out[j].Address == r.Address {
				continue
			}
			return nil, badInput("%s: %s", l.Flag, sameName(r, out[j]))
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
