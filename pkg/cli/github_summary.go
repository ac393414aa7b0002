package cli

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/stptunnel/stptunnel/pkg/connstr"
	"github.com/stptunnel/stptunnel/pkg/doc"
	"github.com/stptunnel/stptunnel/pkg/lambdaenv"
)

// What each command reports to GitHub Actions from its document (CONTRACT.md §6). All of it does nothing unless
// GITHUB_ACTIONS=true, so commands call it unconditionally:
//
//	a.maskDocument(d)                 as soon as a document is read or built, before anything prints
//	a.warnSkipped(skipped)            detect, for the functions it skipped
//	a.summarize(d, doc.FieldTunnels)  once the command's result is in d: outputs, and the summary of its fields
//
// The GitHub Action (action.yml) runs detect | tunnel open --detach | env patch and env restore in its post step;
// each command summarizes only the fields it adds, so the job summary gets one section per step, no repeats.

// Outputs written to $GITHUB_OUTPUT; action.yml declares the same names.
const (
	outputDocument = "document"
	outputTunnels  = "tunnels"
)

// maskDocument masks every secret-bearing value in the document, in every string field (a user's own fields too):
// the passwords of resources' URLs and of the values patches change, as written and percent-decoded.
func (a *app) maskDocument(d *doc.Document) {
	if a.gh == nil || d == nil {
		return
	}
	var walk func(r gjson.Result)
	walk = func(r gjson.Result) {
		switch {
		case r.IsObject() || r.IsArray():
			r.ForEach(func(_, v gjson.Result) bool { walk(v); return true })
		case r.Type == gjson.String:
			a.ui.addSecret(secretsIn(r.Str)...)
		}
	}
	walk(gjson.ParseBytes(d.Bytes()))
}

// secretsIn returns the values connstr.Redact hides in s (and their percent-decoded forms), so that the runner
// masks exactly what our own messages show as ****. Where the redacted text cannot be lined up with s, the whole
// of s is returned: masking too much is safe, too little is not. A session marker (STPTUNNEL_SESSION's value)
// gives the secrets of every value it records, as they are and as they appear inside the marker's JSON.
func secretsIn(s string) []string {
	if m, err := lambdaenv.ParseMarker(s); err == nil {
		return markerSecrets(m)
	}
	redacted := connstr.Redact(s)
	if redacted == s {
		return nil
	}
	pieces := strings.Split(redacted, connstr.Redacted)
	first, last := pieces[0], pieces[len(pieces)-1]
	if !strings.HasPrefix(s, first) || len(s) < len(first)+len(last) || !strings.HasSuffix(s, last) {
		return []string{s}
	}
	rest := s[len(first) : len(s)-len(last)]
	var hidden []string
	for _, p := range pieces[1 : len(pieces)-1] {
		i := strings.Index(rest, p)
		if p == "" || i < 0 {
			return []string{s}
		}
		hidden = append(hidden, rest[:i])
		rest = rest[i+len(p):]
	}
	hidden = append(hidden, rest)
	var out []string
	for _, h := range hidden {
		if h == "" {
			continue
		}
		out = append(out, h)
		if dec, err := url.PathUnescape(h); err == nil && dec != h {
			out = append(out, dec)
		}
	}
	return out
}

// markerSecrets are the secrets of a marker's values before, raw and JSON-escaped (as a printed marker shows them).
func markerSecrets(m lambdaenv.Marker) []string {
	var out []string
	for _, k := range m.KeyNames() {
		b, ok := m.Keys[k].Before()
		if !ok {
			continue
		}
		for _, secret := range secretsIn(b) {
			out = append(out, secret)
			if q, _ := json.Marshal(secret); string(q[1:len(q)-1]) != secret {
				out = append(out, string(q[1:len(q)-1]))
			}
		}
	}
	return out
}

// maskMarker masks the secrets a marker carries, under GitHub Actions: a marker read from a function (another
// session's, or one restored from) holds deployed values this job had not seen.
func (a *app) maskMarker(m *lambdaenv.Marker) {
	if a.gh == nil || m == nil {
		return
	}
	a.ui.addSecret(markerSecrets(*m)...)
}

// warnSkipped emits one ::warning:: annotation per skipped function (the "! Skipping ..." line on stderr is the
// command's own).
func (a *app) warnSkipped(skipped []doc.Skip) {
	for _, s := range skipped {
		msg := fmt.Sprintf("stptunnel skipped %s (%s)", s.Function, s.Reason)
		if s.Message != "" {
			msg += ": " + s.Message
		}
		a.gh.warning(a.ui.redact(msg))
	}
}

// summarize sets the outputs (document, tunnels) and appends to the job summary one table per field named in
// fields (doc.FieldFunctions, FieldSkipped, FieldTunnels, FieldPatches, FieldRestores) that d holds.
func (a *app) summarize(d *doc.Document, fields ...string) error {
	if a.gh == nil || d == nil {
		return nil
	}
	a.maskDocument(d)
	if err := a.gh.output(outputDocument, strings.TrimSpace(string(d.Bytes()))); err != nil {
		return fmt.Errorf("setting the %s output: %w", outputDocument, err)
	}
	tunnels, err := tunnelsJSON(d)
	if err != nil {
		return err
	}
	if err := a.gh.output(outputTunnels, tunnels); err != nil {
		return fmt.Errorf("setting the %s output: %w", outputTunnels, err)
	}
	md, err := a.summaryMarkdown(d, fields...)
	if err != nil || md == "" {
		return err
	}
	if err := a.gh.summaryAppend(md); err != nil {
		return fmt.Errorf("writing the job summary: %w", err)
	}
	return nil
}

// tunnelsJSON is the tunnels output: resource → public address, compact JSON in the document's order.
func tunnelsJSON(d *doc.Document) (string, error) {
	tunnels, err := d.Tunnels()
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, t := range tunnels {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(t.Resource) // strings always marshal
		v, _ := json.Marshal(t.Public)
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.String(), nil
}

// summaryMarkdown renders one table per field. Cells are redacted and escaped; connection strings are never
// shown, only the names of the variables changed.
func (a *app) summaryMarkdown(d *doc.Document, fields ...string) (string, error) {
	var b strings.Builder
	for _, field := range fields {
		t, err := summaryTable(d, field)
		if err != nil {
			return "", err
		}
		if len(t.rows) > 0 {
			t.render(&b, a.ui.redact)
		}
	}
	return b.String(), nil
}

// mdTable is a GitHub-flavoured Markdown table under a heading.
type mdTable struct {
	title   string
	headers []string
	rows    [][]string
}

func summaryTable(d *doc.Document, field string) (*mdTable, error) {
	switch field {
	case doc.FieldFunctions:
		fns, err := d.Functions()
		t := &mdTable{title: "stptunnel: functions using local resources", headers: []string{"Function", "Variable", "Resource", "Bound by"}}
		for _, f := range fns {
			for _, bd := range f.Bindings {
				t.rows = append(t.rows, []string{f.Name, code(bd.Env), bd.Resource, bd.Via})
			}
		}
		return t, err
	case doc.FieldSkipped:
		skipped, err := d.Skipped()
		t := &mdTable{title: "stptunnel: skipped functions", headers: []string{"Function", "Reason", "Why"}}
		for _, s := range skipped {
			t.rows = append(t.rows, []string{s.Function, s.Reason, s.Message})
		}
		return t, err
	case doc.FieldTunnels:
		tunnels, err := d.Tunnels()
		t := &mdTable{title: "stptunnel: tunnels", headers: []string{"Resource", "Local", "Public", "Server", "Engine"}}
		for _, tn := range tunnels {
			t.rows = append(t.rows, []string{tn.Resource, code(tn.Local), code(tn.Public), code(tn.Server), tn.Engine})
		}
		return t, err
	case doc.FieldPatches:
		patches, err := d.Patches()
		t := &mdTable{title: "stptunnel: patched functions", headers: []string{"Function", "Variables", "State"}}
		for _, p := range patches {
			var envs []string
			for _, c := range p.Changes {
				envs = append(envs, code(c.Env))
			}
			t.rows = append(t.rows, []string{p.Function, strings.Join(envs, " "), p.State})
		}
		return t, err
	case doc.FieldRestores:
		restores, err := d.Restores()
		t := &mdTable{title: "stptunnel: restored functions", headers: []string{"Function", "State", "Kept (changed since the patch)"}}
		for _, r := range restores {
			var kept []string
			for _, k := range r.Kept {
				kept = append(kept, code(k.Env))
			}
			t.rows = append(t.rows, []string{r.Function, r.State, strings.Join(kept, " ")})
		}
		return t, err
	case doc.FieldMarkers:
		markers, err := d.Markers()
		t := &mdTable{title: "stptunnel: functions held by a session", headers: []string{"Function", "Session", "By", "Since", "Tunnels", "Variables"}}
		for _, m := range markers {
			var keys []string
			for _, k := range m.Keys {
				keys = append(keys, code(k))
			}
			t.rows = append(t.rows, []string{m.Function, m.Session, m.By, m.Since, tunnelsAlive(m), strings.Join(keys, " ")})
		}
		return t, err
	}
	return nil, fmt.Errorf("summary: no table for the field %q", field)
}

// tunnelsAlive says in a few words whether a marker's tunnels answer.
func tunnelsAlive(m doc.Marked) string {
	switch {
	case m.Message != "":
		return "unreadable marker"
	case len(m.Tunnels) == 0:
		return "none recorded"
	case m.Alive:
		return "alive"
	}
	return "not answering"
}

// render writes the table; every cell is redacted, and escaped so that it stays in its cell.
func (t *mdTable) render(b *strings.Builder, redact func(string) string) {
	fmt.Fprintf(b, "\n### %s\n\n| %s |\n|%s\n", t.title, strings.Join(t.headers, " | "), strings.Repeat(" --- |", len(t.headers)))
	escape := strings.NewReplacer("|", `\|`, "\r", " ", "\n", " ", "<", "&lt;", ">", "&gt;")
	for _, row := range t.rows {
		cells := make([]string, len(row))
		for i, c := range row {
			cells[i] = escape.Replace(redact(c))
		}
		fmt.Fprintf(b, "| %s |\n", strings.Join(cells, " | "))
	}
}

// code formats a cell as inline code: names and addresses, shown as they are.
func code(s string) string {
	if s == "" {
		return ""
	}
	return "`" + strings.ReplaceAll(s, "`", "'") + "`"
}
