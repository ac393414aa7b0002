package lambdaenv

import (
	"errors"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stptunnel/stptunnel/pkg/awssim"
	"github.com/stptunnel/stptunnel/pkg/connstr"
	"github.com/stptunnel/stptunnel/pkg/doc"
)

// A deployed stack: its variables name the cloud databases, and the developers' sessions point them at their own
// local ones through their tunnels.
const (
	cloudDB    = "postgres://admin:cl0udPw@db.cluster-x.eu-west-1.rds.amazonaws.com:5432/app"
	cloudCache = "redis://:r3disPw@cache.x.euw1.cache.amazonaws.com:6379/0"
)

var deployedFn = awssim.Function{Name: "api", Env: map[string]string{
	"STP_POSTGRES_DB_CONNECTION_STRING": cloudDB,
	"STP_CACHE_CONNECTION_STRING":       cloudCache,
	"LOG_LEVEL":                         "info",
}}

// teamTargets are one developer's tunnels: postgres and redis declared locally, reachable at port and port+1.
func teamTargets(port int) map[string]Target {
	pg := Target{Resource: doc.Resource{Name: "postgresDb", Type: "postgres", URL: "postgres://dev:l0cal@localhost:5432/app"},
		Public: connstr.HostPort{Host: "bore.pub", Port: port}}
	cache := Target{Resource: doc.Resource{Name: "cache", Type: "redis", URL: "redis://localhost:6379"},
		Public: connstr.HostPort{Host: "bore.pub", Port: port + 1}}
	return map[string]Target{"postgresDb": pg, "cache": cache}
}

// teamPlan binds api's variables by convention: the postgres one, and the cache's when withCache.
func teamPlan(port int, withCache bool) Plan {
	p := Plan{Function: "api", Targets: teamTargets(port), Bindings: []doc.Binding{
		{Env: "STP_POSTGRES_DB_CONNECTION_STRING", Resource: "postgresDb", Via: doc.ViaConvention}}}
	if withCache {
		p.Bindings = append(p.Bindings, doc.Binding{Env: "STP_CACHE_CONNECTION_STRING", Resource: "cache", Via: doc.ViaConvention})
	}
	return p
}

var (
	sessionA = Session{ID: "aaaaaaaaaaaa", By: "ana@laptop", At: "2026-03-01T10:00:00Z"}
	sessionB = Session{ID: "bbbbbbbbbbbb", By: "bo@desk", At: "2026-03-01T11:00:00Z"}
)

// patcherFor is a patcher of its own session and state dir: another developer's machine.
func patcherFor(t *testing.T, sim *awssim.Server, s Session) *Patcher {
	t.Helper()
	p := newPatcher(t, lambdaClient(sim, nil))
	p.Session = s
	return p
}

func markerOn(t *testing.T, sim *awssim.Server, fn string) (Marker, bool) {
	t.Helper()
	m, ok, err := MarkerOf(envOf(t, sim, fn))
	if err != nil {
		t.Fatalf("%s carries an unreadable marker: %v", fn, err)
	}
	return m, ok
}

func withoutMarker(env map[string]string) map[string]string {
	out := maps.Clone(env)
	delete(out, MarkerKey)
	return out
}

func TestMarkerEncoding(t *testing.T) {
	before := "postgres://admin:pw@db.example.com:5432/app?a=<b>&c=\"d\""
	m := newMarker(sessionA, []string{"bore.pub:54321"}, []doc.Change{
		{Env: "DB", Existed: true, Before: before, After: "postgres://admin:pw@bore.pub:54321/app"},
		{Env: "AWS_ENDPOINT_URL_DYNAMODB", Existed: false, After: "http://bore.pub:54322"},
		{Env: "EMPTY", Existed: true, Before: "", After: "x"},
	})
	got := m.Encode()
	want := `{"v":1,"id":"aaaaaaaaaaaa","by":"ana@laptop","at":"2026-03-01T10:00:00Z","pub":["bore.pub:54321"],"keys":{` +
		`"AWS_ENDPOINT_URL_DYNAMODB":{"b":null,"h":"` + Digest("http://bore.pub:54322") + `"},` +
		`"DB":{"b":"postgres://admin:pw@db.example.com:5432/app?a=<b>&c=\"d\"","h":"` + Digest("postgres://admin:pw@bore.pub:54321/app") + `"},` +
		`"EMPTY":{"b":"","h":"` + Digest("x") + `"}}}`
	if got != want {
		t.Fatalf("Encode =\n%s\nwant\n%s", got, want)
	}
	back, err := ParseMarker(got)
	if err != nil {
		t.Fatal(err)
	}
	if back.Encode() != got {
		t.Fatalf("round trip changed the marker:\n%s", back.Encode())
	}
	if b, existed := back.Keys["AWS_ENDPOINT_URL_DYNAMODB"].Before(); existed || b != "" {
		t.Fatalf("an added key's b = %q, %v; want null", b, existed)
	}
	if b, existed := back.Keys["EMPTY"].Before(); !existed || b != "" {
		t.Fatalf("an empty key's b = %q, %v; want \"\"", b, existed)
	}
	// h is the first 16 characters of base64url(sha256(value)): sha256("abc") = ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0.
	if d := Digest("abc"); d != "ungWv48Bz-pBQUDe" {
		t.Fatalf("Digest(abc) = %q", d)
	}
	if !regexp.MustCompile(`^[A-Za-z0-9_-]{16}$`).MatchString(Digest(before)) {
		t.Fatalf("Digest = %q: want 16 base64url characters", Digest(before))
	}
}

func TestParseMarkerRefusesWithoutQuotingTheValue(t *testing.T) {
	for _, v := range []string{
		`postgres://admin:Pa55word@db:5432/app`,
		`{"v":2,"id":"x","keys":{"DB":{"b":"postgres://admin:Pa55word@db/app","h":"0123456789abcdef"}}}`,
		`{"v":1,"id":"","keys":{}}`,
		`{"v":1,"id":"x","keys":{"DB":{"b":"postgres://admin:Pa55word@db/app"}}}`,
	} {
		_, err := ParseMarker(v)
		if !errors.Is(err, ErrMarker) {
			t.Fatalf("ParseMarker(%q) = %v; want ErrMarker", v, err)
		}
		if strings.Contains(err.Error(), "Pa55word") {
			t.Fatalf("the error quotes the value: %v", err)
		}
	}
}

func TestDeployedUndoesOnlyWhatTheMarkerStillHolds(t *testing.T) {
	m := newMarker(sessionA, nil, []doc.Change{
		{Env: "DB", Existed: true, Before: cloudDB, After: "postgres://dev@bore.pub:1/app"},
		{Env: "ADDED", After: "http://bore.pub:2"},
		{Env: "EDITED", Existed: true, Before: "old", After: "ours"},
	})
	env := map[string]string{"DB": "postgres://dev@bore.pub:1/app", "ADDED": "http://bore.pub:2", "EDITED": "someone else's",
		"OTHER": "x", MarkerKey: m.Encode()}
	want := map[string]string{"DB": cloudDB, "EDITED": "someone else's", "OTHER": "x"}
	if got := Deployed(env); !maps.Equal(got, want) {
		t.Fatalf("Deployed = %v\nwant %v", got, want)
	}
	unreadable := map[string]string{"DB": "x", MarkerKey: "{"}
	if got := Deployed(unreadable); !maps.Equal(got, map[string]string{"DB": "x"}) {
		t.Fatalf("Deployed(unreadable marker) = %v", got)
	}
}

func TestPatchWritesTheMarkerInTheSameUpdate(t *testing.T) {
	sim := newSim(t, deployedFn)
	p := patcherFor(t, sim, sessionA)
	if _, err := p.Patch(ctxT(t), []Plan{teamPlan(40001, true)}); err != nil {
		t.Fatal(err)
	}
	if n := sim.Updates("api"); n != 1 {
		t.Fatalf("%d updates; want the patch and its marker in one", n)
	}
	env := envOf(t, sim, "api")
	m, ok := markerOn(t, sim, "api")
	if !ok {
		t.Fatalf("no marker: %v", env)
	}
	if m.ID != sessionA.ID || m.By != sessionA.By || m.At != sessionA.At || !slices.Equal(m.Pub, []string{"bore.pub:40001", "bore.pub:40002"}) {
		t.Fatalf("marker = %+v", m)
	}
	for key, before := range map[string]string{"STP_POSTGRES_DB_CONNECTION_STRING": cloudDB, "STP_CACHE_CONNECTION_STRING": cloudCache} {
		mk := m.Keys[key]
		if b, existed := mk.Before(); !existed || b != before || mk.H != Digest(env[key]) {
			t.Fatalf("marker key %s = %+v; want b the deployed value and h the digest of %q", key, mk, env[key])
		}
	}
	if len(m.Keys) != 2 {
		t.Fatalf("marker keys = %v; want the two changed", m.KeyNames())
	}
	if e := p.Journal.Entries(); len(e) != 1 || e[0].Session != sessionA.ID {
		t.Fatalf("journal = %+v; want the session id recorded", e)
	}
	// The marker counts in the 4 KB budget, as Lambda counts it.
	if EnvSize(env) != awssim.EnvSize(env) || EnvSize(env) <= EnvSize(withoutMarker(env)) {
		t.Fatal("the marker is not counted")
	}
	// Restore removes it in the same update that puts the keys back.
	if _, err := p.Restore(ctxT(t), p.Journal.Entries(), RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	assertEnv(t, sim, "api", deployedFn.Env)
	if n := sim.Updates("api"); n != 2 {
		t.Fatalf("%d updates; want 1 for the patch and 1 for the restore", n)
	}
}

func TestSecondSessionIsSkippedAsInUse(t *testing.T) {
	sim := newSim(t, deployedFn)
	a, b := patcherFor(t, sim, sessionA), patcherFor(t, sim, sessionB)
	if _, err := a.Patch(ctxT(t), []Plan{teamPlan(40001, true)}); err != nil {
		t.Fatal(err)
	}
	held := envOf(t, sim, "api")
	var events []Event
	b.Progress = func(e Event) { events = append(events, e) }
	res, err := b.Patch(ctxT(t), []Plan{teamPlan(50001, true)})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Patches) != 0 || len(res.Skipped) != 1 || res.Skipped[0].Reason != doc.ReasonInUse {
		t.Fatalf("result = %+v", res)
	}
	if !strings.Contains(res.Skipped[0].Message, sessionA.ID) || !strings.Contains(res.Skipped[0].Message, sessionA.By) ||
		!strings.Contains(res.Skipped[0].Message, sessionA.At) || strings.Contains(res.Skipped[0].Message, "cl0udPw") {
		t.Fatalf("skip message %q: want who holds it and since when, and no value", res.Skipped[0].Message)
	}
	if len(res.InUse) != 1 || res.InUse[0].Function != "api" || res.InUse[0].Marker == nil || res.InUse[0].Marker.ID != sessionA.ID {
		t.Fatalf("InUse = %+v", res.InUse)
	}
	if len(events) != 1 || events[0].Kind != EventSkipped || events[0].Holder == nil || events[0].Holder.By != sessionA.By {
		t.Fatalf("events = %+v", events)
	}
	if sim.Updates("api") != 1 || b.Journal.Len() != 0 {
		t.Fatalf("the second session wrote: %d updates, %d journal entries", sim.Updates("api"), b.Journal.Len())
	}
	assertEnv(t, sim, "api", held)
	// A dry run says the same and writes nothing either.
	b.DryRun = true
	if res, err := b.Patch(ctxT(t), []Plan{teamPlan(50001, true)}); err != nil || len(res.InUse) != 1 {
		t.Fatalf("dry run: %+v, %v", res, err)
	}
}

// Two sessions on one function, the second taking it over: whichever restores first, once both have, the function
// holds its deployed values, byte for byte, and no marker.
func TestTakeOverEndsAtTheDeployedValuesInEitherOrder(t *testing.T) {
	for _, order := range []string{"taker-first", "first-first"} {
		t.Run(order, func(t *testing.T) {
			sim := newSim(t, deployedFn)
			a, b := patcherFor(t, sim, sessionA), patcherFor(t, sim, sessionB)
			ctx := ctxT(t)
			if _, err := a.Patch(ctx, []Plan{teamPlan(40001, true)}); err != nil {
				t.Fatal(err)
			}
			b.TakeOver = true
			res, err := b.Patch(ctx, []Plan{teamPlan(50001, true)})
			if err != nil || len(res.Patches) != 1 || len(res.Skipped) != 0 {
				t.Fatalf("take-over: %+v, %v", res, err)
			}
			for _, c := range res.Patches[0].Changes {
				if want := deployedFn.Env[c.Env]; !c.Existed || c.Before != want {
					t.Fatalf("take-over change %s: before %q; want the deployed %q, not the other session's value", c.Env, c.Before, want)
				}
			}
			m, _ := markerOn(t, sim, "api")
			if m.ID != sessionB.ID {
				t.Fatalf("marker after take-over = %+v", m)
			}
			if b, _ := m.Keys["STP_POSTGRES_DB_CONNECTION_STRING"].Before(); b != cloudDB {
				t.Fatalf("take-over marker b = %q; want the deployed value", b)
			}
			first, second := b, a
			if order == "first-first" {
				first, second = a, b
			}
			r1, err := first.Restore(ctx, first.Journal.Entries(), RestoreOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if order == "first-first" {
				// The first session's keys were taken over: kept, naming the session that holds them now.
				if len(r1) != 1 || r1[0].State != doc.RestorePartial || !strings.Contains(r1[0].Message, sessionB.ID) {
					t.Fatalf("first session's restore = %+v", r1)
				}
				if m, ok := markerOn(t, sim, "api"); !ok || m.ID != sessionB.ID {
					t.Fatal("the first session's restore removed the marker of the session that holds the function")
				}
			}
			if _, err := second.Restore(ctx, second.Journal.Entries(), RestoreOptions{}); err != nil {
				t.Fatal(err)
			}
			assertEnv(t, sim, "api", deployedFn.Env)
		})
	}
}

// Taking over shares the function: a key the other session wrote and this one does not bind keeps the other
// session's value, and is restored to the deployed value by whichever session restores it.
func TestTakeOverSharesTheKeysItLeaves(t *testing.T) {
	for _, order := range []string{"taker-first", "first-first"} {
		t.Run(order, func(t *testing.T) {
			sim := newSim(t, deployedFn)
			a, b := patcherFor(t, sim, sessionA), patcherFor(t, sim, sessionB)
			ctx := ctxT(t)
			if _, err := a.Patch(ctx, []Plan{teamPlan(40001, true)}); err != nil {
				t.Fatal(err)
			}
			cacheOfA := envOf(t, sim, "api")["STP_CACHE_CONNECTION_STRING"]
			b.TakeOver = true
			if _, err := b.Patch(ctx, []Plan{teamPlan(50001, false)}); err != nil {
				t.Fatal(err)
			}
			env := envOf(t, sim, "api")
			if env["STP_CACHE_CONNECTION_STRING"] != cacheOfA || !strings.Contains(env["STP_POSTGRES_DB_CONNECTION_STRING"], "bore.pub:50001") {
				t.Fatalf("after the take-over api = %v", withoutMarker(env))
			}
			m, _ := markerOn(t, sim, "api")
			if mk := m.Keys["STP_CACHE_CONNECTION_STRING"]; mk.H != Digest(cacheOfA) || *mk.B != cloudCache {
				t.Fatalf("the shared key's marker entry = %+v", mk)
			}
			first, second := b, a
			if order == "first-first" {
				first, second = a, b
			}
			if _, err := first.Restore(ctx, first.Journal.Entries(), RestoreOptions{}); err != nil {
				t.Fatal(err)
			}
			if order == "taker-first" {
				assertEnv(t, sim, "api", deployedFn.Env) // it restored everything it held, the shared key too
			}
			if _, err := second.Restore(ctx, second.Journal.Entries(), RestoreOptions{}); err != nil {
				t.Fatal(err)
			}
			assertEnv(t, sim, "api", deployedFn.Env)
		})
	}
}

func TestRepatchOfOwnFunctionKeepsItsBefore(t *testing.T) {
	sim := newSim(t, deployedFn)
	p := patcherFor(t, sim, sessionA)
	ctx := ctxT(t)
	if _, err := p.Patch(ctx, []Plan{teamPlan(40001, true)}); err != nil {
		t.Fatal(err)
	}
	// The tunnel moved: the same session patches again, from this journal...
	if _, err := p.Patch(ctx, []Plan{teamPlan(40011, true)}); err != nil {
		t.Fatal(err)
	}
	m, _ := markerOn(t, sim, "api")
	if b, _ := m.Keys["STP_POSTGRES_DB_CONNECTION_STRING"].Before(); b != cloudDB || !slices.Equal(m.Pub, []string{"bore.pub:40011", "bore.pub:40012"}) {
		t.Fatalf("re-patched marker = %+v", m)
	}
	// ...and from another machine with the same session id (no journal entry): the marker's b still rules.
	other := patcherFor(t, sim, sessionA)
	res, err := other.Patch(ctx, []Plan{teamPlan(40021, true)})
	if err != nil || len(res.Skipped) != 0 {
		t.Fatalf("same session, another journal: %+v, %v", res, err)
	}
	if c := res.Patches[0].Changes[0]; c.Before != deployedFn.Env[c.Env] {
		t.Fatalf("re-patch before = %q; want the deployed value", c.Before)
	}
	if _, err := other.Restore(ctx, other.Journal.Entries(), RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	assertEnv(t, sim, "api", deployedFn.Env)
}

// A journal's entry continues its session: a later session of the same state dir patching the function finds its
// own earlier marker, not another developer's.
func TestJournalsSessionIsNotInUse(t *testing.T) {
	sim := newSim(t, deployedFn)
	p := patcherFor(t, sim, sessionA)
	ctx := ctxT(t)
	if _, err := p.Patch(ctx, []Plan{teamPlan(40001, true)}); err != nil {
		t.Fatal(err)
	}
	p.Session = sessionB
	res, err := p.Patch(ctx, []Plan{teamPlan(40031, true)})
	if err != nil || len(res.Skipped) != 0 || len(res.Patches) != 1 {
		t.Fatalf("%+v, %v", res, err)
	}
	if m, _ := markerOn(t, sim, "api"); m.ID != sessionB.ID || *m.Keys["STP_POSTGRES_DB_CONNECTION_STRING"].B != cloudDB {
		t.Fatalf("marker = %+v", m)
	}
	if e := p.Journal.Entries(); e[0].Session != sessionB.ID {
		t.Fatalf("journal session = %q", e[0].Session)
	}
	if _, err := p.Restore(ctx, p.Journal.Entries(), RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	assertEnv(t, sim, "api", deployedFn.Env)
}

func TestRestoreFromMarkerWithoutJournal(t *testing.T) {
	sim := newSim(t, deployedFn, apiFn2())
	a := patcherFor(t, sim, sessionA)
	ctx := ctxT(t)
	if _, err := a.Patch(ctx, []Plan{teamPlan(40001, true), {Function: "jobs", Targets: teamTargets(40001),
		Bindings: []doc.Binding{{Env: "DATABASE_URL", Resource: "postgresDb", Via: doc.ViaMap}}}}); err != nil {
		t.Fatal(err)
	}
	// The machine that patched is gone. Someone edits a key of jobs by hand (the console keeps the marker).
	edited := envOf(t, sim, "jobs")
	edited["DATABASE_URL"] = "postgres://admin:n3w@db2.cluster-x.eu-west-1.rds.amazonaws.com:5432/jobs"
	sim.SetEnv("jobs", edited)

	restorer := patcherFor(t, sim, Session{}) // a restore needs no session
	var events []Event
	restorer.Progress = func(e Event) { events = append(events, e) }
	entries := []Entry{{Function: "api", FromMarker: true}, {Function: "jobs", FromMarker: true}}

	// --session of another session: nothing is touched.
	rs, err := restorer.Restore(ctx, entries[:1], RestoreOptions{Session: sessionB.ID})
	if err != nil || len(rs) != 1 || rs[0].State != doc.RestoreNotNeeded || !strings.Contains(rs[0].Message, sessionA.ID) {
		t.Fatalf("restore of another session = %+v, %v", rs, err)
	}
	rs, err = restorer.Restore(ctx, entries, RestoreOptions{Session: sessionA.ID})
	if err != nil {
		t.Fatal(err)
	}
	want := []doc.Restore{{Function: "api", State: doc.RestoreRestored},
		{Function: "jobs", State: doc.RestorePartial, Kept: []doc.Kept{{Env: "DATABASE_URL", Reason: ReasonChangedSincePatch}}}}
	if !equalRestores(rs, want) {
		t.Fatalf("restores = %+v", rs)
	}
	assertEnv(t, sim, "api", deployedFn.Env)
	assertEnv(t, sim, "jobs", withoutMarker(edited))
	// Idempotent: nothing left.
	rs, err = restorer.Restore(ctx, entries, RestoreOptions{})
	if err != nil || rs[0].State != doc.RestoreNotNeeded || rs[1].State != doc.RestoreNotNeeded {
		t.Fatalf("again = %+v, %v", rs, err)
	}
	if restorer.Journal.Len() != 0 {
		t.Fatal("a restore from markers wrote the journal")
	}
}

// jobs is bound by --map: its variable names the cloud database too.
func apiFn2() awssim.Function {
	return awssim.Function{Name: "jobs", Env: map[string]string{"DATABASE_URL": cloudDB, "QUEUE": "jobs"}}
}

func TestDeployDuringSessionDropsTheMarker(t *testing.T) {
	sim := newSim(t, deployedFn)
	p := patcherFor(t, sim, sessionA)
	ctx := ctxT(t)
	if _, err := p.Patch(ctx, []Plan{teamPlan(40001, true)}); err != nil {
		t.Fatal(err)
	}
	// A deploy writes the template's variables: the marker is gone with the session's values.
	redeployed := map[string]string{"STP_POSTGRES_DB_CONNECTION_STRING": cloudDB + "?v=2", "STP_CACHE_CONNECTION_STRING": cloudCache, "LOG_LEVEL": "warn"}
	sim.SetEnv("api", redeployed)
	rs, err := p.Restore(ctx, p.Journal.Entries(), RestoreOptions{})
	if err != nil || len(rs) != 1 || rs[0].State != doc.RestorePartial || len(rs[0].Kept) != 1 {
		t.Fatalf("restores = %+v, %v", rs, err)
	}
	assertEnv(t, sim, "api", redeployed)
	if sim.Updates("api") != 1 {
		t.Fatalf("the restore wrote %d times; nothing of ours was left", sim.Updates("api")-1)
	}
	// From the marker, there is nothing to restore either.
	rs, err = p.Restore(ctx, []Entry{{Function: "api", FromMarker: true}}, RestoreOptions{})
	if err != nil || rs[0].State != doc.RestoreNotNeeded {
		t.Fatalf("from the marker: %+v, %v", rs, err)
	}
}

// A function whose patched variables fit in 4 KB but not with the marker is patched without it, with a warning
// event, and restored from the journal.
func TestMarkerThatDoesNotFit(t *testing.T) {
	fn := awssim.Function{Name: "api", Env: maps.Clone(deployedFn.Env)}
	patched := func(filler int) int {
		fn.Env["FILLER"] = strings.Repeat("x", filler)
		next, _, _, err := Rewrite(fn.Env, teamPlan(40001, true).Bindings, teamTargets(40001))
		if err != nil {
			t.Fatal(err)
		}
		return EnvSize(next)
	}
	// The larger of the deployed and the patched maps is exactly 4096 bytes: both fit, the marker does not.
	fn.Env["FILLER"] = ""
	fn.Env["FILLER"] = strings.Repeat("x", MaxEnvSize-max(patched(0), EnvSize(fn.Env)))
	if n := max(patched(len(fn.Env["FILLER"])), EnvSize(fn.Env)); n != MaxEnvSize {
		t.Fatalf("filler miscomputed: %d bytes", n)
	}
	sim := newSim(t, fn)
	p := patcherFor(t, sim, sessionA)
	var events []Event
	p.Progress = func(e Event) { events = append(events, e) }
	res, err := p.Patch(ctxT(t), []Plan{teamPlan(40001, true)})
	if err != nil || len(res.Patches) != 1 || res.Patches[0].State != doc.PatchApplied {
		t.Fatalf("%+v, %v", res, err)
	}
	if _, ok := markerOn(t, sim, "api"); ok {
		t.Fatal("a marker that does not fit was written")
	}
	if i := slices.IndexFunc(events, func(e Event) bool { return e.Kind == EventNoMarker }); i < 0 {
		t.Fatalf("no warning event: %+v", events)
	}
	if _, err := p.Restore(ctxT(t), p.Journal.Entries(), RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	assertEnv(t, sim, "api", fn.Env)
}

func TestUnreadableMarkerIsInUseEvenForTakeOver(t *testing.T) {
	env := maps.Clone(deployedFn.Env)
	env[MarkerKey] = `{"v":2,"id":"future","keys":{}}`
	sim := newSim(t, awssim.Function{Name: "api", Env: env})
	p := patcherFor(t, sim, sessionA)
	p.TakeOver = true
	res, err := p.Patch(ctxT(t), []Plan{teamPlan(40001, true)})
	if err != nil || len(res.Skipped) != 1 || res.Skipped[0].Reason != doc.ReasonInUse || len(res.InUse) != 1 || res.InUse[0].Marker != nil {
		t.Fatalf("%+v, %v", res, err)
	}
	if sim.Updates("api") != 0 {
		t.Fatal("written")
	}
}
