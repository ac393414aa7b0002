package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stptunnel/stptunnel/pkg/doc"
)

func TestSecretsIn(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{"postgres://app:hunter22@localhost:5432/app", []string{"hunter22"}},
		{"postgres://app:pa%40ss@localhost:5432/app", []string{"pa%40ss", "pa@ss"}},
		{"redis://:r3dis@localhost:6379/0 and mysql://u:my5ql@localhost/db", []string{"r3dis", "my5ql"}},
		{"app:dsnpass@tcp(localhost:3306)/app", []string{"dsnpass"}},
		{"host=localhost password=kvpass dbname=app", []string{"kvpass"}},
		{"postgres://app@localhost/app", nil},
		{"postgresDb", nil},
		{"", nil},
		// A session marker: the secrets of the values it records, also as its JSON shows them (escaped).
		{`{"v":1,"id":"aaaaaaaaaaaa","by":"a@b","at":"2026-03-01T10:00:00Z","pub":["bore.pub:1"],"keys":{` +
			`"DB":{"b":"postgres://admin:back\\slash@db.example.com:5432/app","h":"ungWv48Bz-pBQUDe"},` +
			`"ADDED":{"b":null,"h":"ungWv48Bz-pBQUDe"},"KV":{"b":"host=db password=kvpass","h":"ungWv48Bz-pBQUDe"}}}`,
			[]string{`back\slash`, `back\\slash`, "kvpass"}},
	}
	for _, c := range cases {
		if got := secretsIn(c.in); !slices.Equal(got, c.want) {
			t.Errorf("secretsIn(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// newGitHubTestApp is an app that believes it runs under GitHub Actions, with the runner's files in dir.
func newGitHubTestApp(t *testing.T, dir string) (*app, *bytes.Buffer) {
	t.Helper()
	env := map[string]string{
		"GITHUB_ACTIONS":      "true",
		"GITHUB_OUTPUT":       filepath.Join(dir, "output"),
		"GITHUB_STEP_SUMMARY": filepath.Join(dir, "summary.md"),
	}
	var stderr bytes.Buffer
	a := &app{stderr: &stderr, getenv: func(k string) string { return env[k] }}
	a.gh = newGitHub(a.getenv, &stderr)
	a.ui = &ui{w: &stderr, gh: a.gh}
	return a, &stderr
}

const summaryTestDocument = `{"stptunnel":"v1","region":"eu-west-1","mine":{"note":"redis://:userfield-pw@localhost:6379"},
 "resources":[{"name":"postgresDb","type":"postgres","url":"postgres://app:hunter22@localhost:5432/app","address":"localhost:5432"}],
 "functions":[{"name":"api","bindings":[{"env":"STP_POSTGRES_DB_CONNECTION_STRING","resource":"postgresDb","via":"convention"}]}],
 "skipped":[{"function":"worker","reason":"vpc-no-nat","message":"runs in a VPC | without a <NAT> gateway"}],
 "tunnels":[{"resource":"postgresDb","local":"localhost:5432","public":"127.0.0.1:40001","server":"127.0.0.1","engine":"native"}],
 "patches":[{"function":"api","state":"applied","changes":[{"env":"STP_POSTGRES_DB_CONNECTION_STRING","existed":true,
   "before":"postgres://app:hunter22@localhost:5432/app","after":"postgres://app:hunter22@127.0.0.1:40001/app"}]}],
 "restores":[{"function":"api","state":"partial","kept":[{"env":"STP_POSTGRES_DB_CONNECTION_STRING","reason":"changed-since-patch"}]}]}`

func TestSummarizeWritesOutputsMasksAndTables(t *testing.T) {
	dir := t.TempDir()
	a, stderr := newGitHubTestApp(t, dir)
	d, err := doc.Parse([]byte(summaryTestDocument), "test")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.summarize(d, doc.FieldTunnels, doc.FieldPatches); err != nil {
		t.Fatal(err)
	}
	if err := a.summarize(d, doc.FieldFunctions, doc.FieldSkipped, doc.FieldRestores); err != nil {
		t.Fatal(err)
	}

	// Masks come once per value, on stderr, and cover a user's own fields too.
	if got, want := stderr.String(), "::add-mask::userfield-pw\n::add-mask::hunter22\n"; got != want {
		t.Errorf("stderr = %q, want %q", got, want)
	}

	output, err := os.ReadFile(filepath.Join(dir, "output"))
	if err != nil {
		t.Fatal(err)
	}
	outputs := mustParseFileCommands(t, string(output))
	if got, want := outputs["tunnels"], `{"postgresDb":"127.0.0.1:40001"}`; got != want {
		t.Errorf("tunnels output = %q, want %q", got, want)
	}
	if got := outputs["document"]; got != strings.TrimSpace(string(d.Bytes())) {
		t.Errorf("document output = %q", got)
	}

	summary, err := os.ReadFile(filepath.Join(dir, "summary.md"))
	if err != nil {
		t.Fatal(err)
	}
	want := "\n### stptunnel: tunnels\n\n" +
		"| Resource | Local | Public | Server | Engine |\n| --- | --- | --- | --- | --- |\n" +
		"| postgresDb | `localhost:5432` | `127.0.0.1:40001` | `127.0.0.1` | native |\n" +
		"\n### stptunnel: patched functions\n\n" +
		"| Function | Variables | State |\n| --- | --- | --- |\n" +
		"| api | `STP_POSTGRES_DB_CONNECTION_STRING` | applied |\n" +
		"\n### stptunnel: functions using local resources\n\n" +
		"| Function | Variable | Resource | Bound by |\n| --- | --- | --- | --- |\n" +
		"| api | `STP_POSTGRES_DB_CONNECTION_STRING` | postgresDb | convention |\n" +
		"\n### stptunnel: skipped functions\n\n" +
		"| Function | Reason | Why |\n| --- | --- | --- |\n" +
		"| worker | vpc-no-nat | runs in a VPC \\| without a &lt;NAT&gt; gateway |\n" +
		"\n### stptunnel: restored functions\n\n" +
		"| Function | State | Kept (changed since the patch) |\n| --- | --- | --- |\n" +
		"| api | partial | `STP_POSTGRES_DB_CONNECTION_STRING` |\n"
	if string(summary) != want {
		t.Errorf("summary:\n%s\nwant:\n%s", summary, want)
	}
	if strings.Contains(string(summary), "hunter22") {
		t.Error("the summary shows a password")
	}
}

func TestSummarizeSkipsEmptyTablesAndRefusesUnknownFields(t *testing.T) {
	dir := t.TempDir()
	a, _ := newGitHubTestApp(t, dir)
	if err := a.summarize(doc.New(), doc.FieldTunnels, doc.FieldSkipped); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "summary.md")); !os.IsNotExist(err) {
		t.Errorf("an empty document wrote a summary (%v)", err)
	}
	output, _ := os.ReadFile(filepath.Join(dir, "output"))
	if got := mustParseFileCommands(t, string(output))["tunnels"]; got != "{}" {
		t.Errorf("tunnels output = %q, want {}", got)
	}
	if err := a.summarize(doc.New(), "region"); err == nil || !strings.Contains(err.Error(), `no table for the field "region"`) {
		t.Errorf("unknown field: err = %v", err)
	}
}

func TestGitHubReportingIsSilentOutsideActions(t *testing.T) {
	var stderr bytes.Buffer
	a := &app{stderr: &stderr, getenv: func(string) string { return "" }}
	a.ui = &ui{w: &stderr}
	d, err := doc.Parse([]byte(summaryTestDocument), "test")
	if err != nil {
		t.Fatal(err)
	}
	a.maskDocument(d)
	a.warnSkipped([]doc.Skip{{Function: "worker", Reason: doc.ReasonVPCNoNAT}})
	if err := a.summarize(d, doc.FieldTunnels); err != nil {
		t.Fatal(err)
	}
	if stderr.Len() != 0 {
		t.Errorf("wrote %q outside GitHub Actions", stderr.String())
	}
}

func TestWarnSkippedAnnotatesEachFunction(t *testing.T) {
	a, stderr := newGitHubTestApp(t, t.TempDir())
	a.ui.addSecret("hunter22")
	a.warnSkipped([]doc.Skip{
		{Function: "worker", Reason: doc.ReasonVPCNoNAT, Message: "runs in a VPC without a NAT gateway"},
		{Function: "big", Reason: doc.ReasonTooLarge, Message: "would exceed 4 KB with hunter22\nin it"},
		{Function: "ghost", Reason: doc.ReasonNotFound},
	})
	want := "::add-mask::hunter22\n" +
		"::warning::stptunnel skipped worker (vpc-no-nat): runs in a VPC without a NAT gateway\n" +
		"::warning::stptunnel skipped big (too-large): would exceed 4 KB with ****%0Ain it\n" +
		"::warning::stptunnel skipped ghost (not-found)\n"
	if got := stderr.String(); got != want {
		t.Errorf("stderr:\n%s\nwant:\n%s", got, want)
	}
}
