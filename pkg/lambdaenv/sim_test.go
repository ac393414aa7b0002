package lambdaenv

import (
	"context"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/stptunnel/stptunnel/pkg/awssim"
	"github.com/stptunnel/stptunnel/pkg/connstr"
	"github.com/stptunnel/stptunnel/pkg/doc"
)

// Every test here drives pkg/awssim through the real aws-sdk-go-v2 Lambda client.

const simRegion = "eu-west-1"

// testQuotas are Lambda's quotas ten times over: the tests run with quotas enforced and a Patcher paced to them, ten
// times faster than against a real account. TestPatchUnderLambdaQuotas runs at the real rates.
var testQuotas = awssim.Quotas{ControlPlane: 10 * DefaultControlPlaneRate, GetFunction: 10 * DefaultGetFunctionRate}

func newSim(t *testing.T, fns ...awssim.Function) *awssim.Server {
	t.Helper()
	sim, err := awssim.New(awssim.Options{Region: simRegion, Quotas: testQuotas})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	for _, f := range fns {
		sim.PutFunction(f)
	}
	return sim
}

// lambdaClient is a client of sim with the SDK's standard retryer (3 attempts) minus its waits. transport, when
// set, wraps the HTTP transport (to interleave an out-of-band deploy with a request).
func lambdaClient(sim *awssim.Server, transport func(http.RoundTripper) http.RoundTripper) *lambda.Client {
	cfg := aws.Config{
		Region:       simRegion,
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDAWSSIM", "secret", ""),
		BaseEndpoint: aws.String(sim.URL()),
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return time.Millisecond, nil })
				o.RateLimiter = ratelimit.None
			})
		},
	}
	if transport != nil {
		cfg.HTTPClient = &http.Client{Transport: transport(http.DefaultTransport)}
	}
	return lambda.NewFromConfig(cfg)
}

// newPatcher returns a Patcher with a journal in a fresh directory and short delays.
func newPatcher(t *testing.T, c *lambda.Client) *Patcher {
	t.Helper()
	j, err := OpenJournal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return &Patcher{Client: c, Journal: j, Wait: true, Session: testSession, RetryBase: time.Millisecond, RetryMax: 5 * time.Millisecond,
		PollInterval: 2 * time.Millisecond, ControlPlaneRate: testQuotas.ControlPlane, GetFunctionRate: testQuotas.GetFunction}
}

// testSession is the session of newPatcher's patches.
var testSession = Session{ID: "5e55101d0001", By: "ana@laptop", At: "2026-03-01T10:00:00Z"}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

var (
	apiFn = awssim.Function{Name: "api", Env: map[string]string{
		"STP_POSTGRES_DB_CONNECTION_STRING": "postgres://app:s3cret@localhost:5432/app?sslmode=disable",
		"LOG_LEVEL":                         "debug",
	}}
	workerFn = awssim.Function{Name: "worker", Env: map[string]string{
		"STP_POSTGRES_DB_HOST": "127.0.0.1", "STP_POSTGRES_DB_PORT": "5432", "QUEUE": "jobs",
	}}
	ordersFn = awssim.Function{Name: "orders", Env: map[string]string{"STP_ORDERS_ENDPOINT": "http://localhost:8000"}}
)

func targets(pgPort int) map[string]Target {
	pg := pgTarget
	pg.Public = connstr.HostPort{Host: "127.0.0.1", Port: pgPort}
	dy := dynamoTarget
	dy.Public = connstr.HostPort{Host: "127.0.0.1", Port: 40002}
	return map[string]Target{"postgresDb": pg, "orders": dy}
}

func plan(fn string, pgPort int, envs ...string) Plan {
	p := Plan{Function: fn, Targets: targets(pgPort)}
	for _, e := range envs {
		res := "postgresDb"
		if strings.Contains(e, "ORDERS") {
			res = "orders"
		}
		p.Bindings = append(p.Bindings, doc.Binding{Env: e, Resource: res, Via: doc.ViaConvention})
	}
	return p
}

func allPlans() []Plan {
	return []Plan{
		plan("api", 40001, "STP_POSTGRES_DB_CONNECTION_STRING"),
		plan("worker", 40001, "STP_POSTGRES_DB_HOST", "STP_POSTGRES_DB_PORT"),
		plan("orders", 40001, "STP_ORDERS_ENDPOINT"),
	}
}

func envOf(t *testing.T, sim *awssim.Server, name string) map[string]string {
	t.Helper()
	env, ok := sim.Env(name)
	if !ok {
		t.Fatalf("function %s is gone", name)
	}
	return env
}

func assertEnv(t *testing.T, sim *awssim.Server, name string, want map[string]string) {
	t.Helper()
	got := envOf(t, sim, name)
	if awssim.EnvSize(got) != awssim.EnvSize(want) || string(awssim.CompactJSON(got)) != string(awssim.CompactJSON(want)) {
		t.Fatalf("%s env = %s\nwant          %s", name, awssim.CompactJSON(got), awssim.CompactJSON(want))
	}
}

// calls is how many reads (GetFunction, GetFunctionConfiguration) and updates sim answered.
func calls(sim *awssim.Server) (reads, updates int) {
	return sim.Calls("GetFunction") + sim.Calls("GetFunctionConfiguration"), sim.Calls("UpdateFunctionConfiguration")
}

func TestPatchRestoreRoundTripIsByteIdentical(t *testing.T) {
	sim := newSim(t, apiFn, workerFn, ordersFn)
	p := newPatcher(t, lambdaClient(sim, nil))
	ctx := ctxT(t)

	res, err := p.Patch(ctx, allPlans())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Patches) != 3 || len(res.Skipped) != 0 {
		t.Fatalf("result = %+v", res)
	}
	for _, pa := range res.Patches {
		if pa.State != doc.PatchApplied || pa.ARN == "" || pa.Revision == "" {
			t.Fatalf("patch = %+v", pa)
		}
	}
	if got := envOf(t, sim, "api")["STP_POSTGRES_DB_CONNECTION_STRING"]; got != "postgres://app:s3cret@127.0.0.1:40001/app?sslmode=disable" {
		t.Fatalf("api patched to %q", got)
	}
	if w := envOf(t, sim, "worker"); w["STP_POSTGRES_DB_HOST"] != "127.0.0.1" || w["STP_POSTGRES_DB_PORT"] != "40001" {
		t.Fatalf("worker patched to %v", w)
	}
	if o := envOf(t, sim, "orders"); o["STP_ORDERS_ENDPOINT"] != "http://127.0.0.1:40002" || o[EnvDynamoDBEndpoint] != "http://127.0.0.1:40002" {
		t.Fatalf("orders patched to %v", o)
	}
	reads, updates := calls(sim)
	t.Logf("patch: %d GetFunctionConfiguration, %d UpdateFunctionConfiguration for 3 functions", reads, updates)
	if updates != 3 || reads > 6 {
		t.Fatalf("patch made %d reads and %d updates for 3 functions; want 3 updates and at most 2 reads each", reads, updates)
	}

	st, err := os.Stat(p.Journal.Path())
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("journal: %v, mode %v", err, st.Mode())
	}
	reopened, err := OpenJournal(filepath.Dir(p.Journal.Path()))
	if err != nil || reopened.Len() != 3 {
		t.Fatalf("reopened journal: %d entries, %v", reopened.Len(), err)
	}
	for _, e := range reopened.Entries() {
		if e.State != doc.PatchApplied || e.Region != simRegion || !strings.HasPrefix(e.ARN, "arn:aws:lambda:") {
			t.Fatalf("journal entry = %+v", e)
		}
	}

	restores, err := p.Restore(ctx, reopened.Entries(), RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range restores {
		if r.State != doc.RestoreRestored {
			t.Fatalf("restore = %+v", r)
		}
	}
	r2, u2 := calls(sim)
	t.Logf("restore: %d GetFunctionConfiguration, %d UpdateFunctionConfiguration for 3 functions", r2-reads, u2-updates)
	if u2-updates != 3 || r2-reads > 6 {
		t.Fatalf("restore made %d reads and %d updates for 3 functions", r2-reads, u2-updates)
	}
	assertEnv(t, sim, "api", apiFn.Env)
	assertEnv(t, sim, "worker", workerFn.Env)
	assertEnv(t, sim, "orders", ordersFn.Env)
	if _, err := os.Stat(p.Journal.Path()); !os.IsNotExist(err) {
		t.Fatalf("journal left after a full restore: %v", err)
	}

	// Twice is a no-op: nothing written.
	again, err := p.Restore(ctx, reopened.Entries(), RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range again {
		if r.State != doc.RestoreNotNeeded {
			t.Fatalf("second restore = %+v", r)
		}
	}
	if _, u3 := calls(sim); u3 != u2 {
		t.Fatalf("second restore wrote %d times", u3-u2)
	}
}

func TestDryRunWritesNothing(t *testing.T) {
	sim := newSim(t, apiFn)
	p := newPatcher(t, lambdaClient(sim, nil))
	p.DryRun = true
	res, err := p.Patch(ctxT(t), allPlans()[:1])
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Patches) != 1 || res.Patches[0].State != doc.PatchDryRun || len(res.Patches[0].Changes) != 1 {
		t.Fatalf("result = %+v", res)
	}
	if _, u := calls(sim); u != 0 || p.Journal.Len() != 0 {
		t.Fatalf("dry run wrote: %d updates, %d journal entries", u, p.Journal.Len())
	}
	assertEnv(t, sim, "api", apiFn.Env)
}

func TestDeployDuringSessionIsPreservedAndReported(t *testing.T) {
	sim := newSim(t, apiFn, workerFn)
	p := newPatcher(t, lambdaClient(sim, nil))
	ctx := ctxT(t)
	if _, err := p.Patch(ctx, allPlans()[:2]); err != nil {
		t.Fatal(err)
	}
	// A deploy changes the bound connection string of api and adds a key; worker's port changes.
	deployed := envOf(t, sim, "api")
	deployed["STP_POSTGRES_DB_CONNECTION_STRING"] = "postgres://app:s3cret@db.internal:5432/app"
	deployed["FEATURE"] = "on"
	sim.SetEnv("api", deployed)
	w := envOf(t, sim, "worker")
	w["STP_POSTGRES_DB_PORT"] = "6000"
	sim.SetEnv("worker", w)

	restores, err := p.Restore(ctx, p.Journal.Entries(), RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []doc.Restore{
		{Function: "api", State: doc.RestorePartial, Kept: []doc.Kept{{Env: "STP_POSTGRES_DB_CONNECTION_STRING", Reason: ReasonChangedSincePatch}}},
		{Function: "worker", State: doc.RestorePartial, Kept: []doc.Kept{{Env: "STP_POSTGRES_DB_PORT", Reason: ReasonChangedSincePatch}}},
	}
	if !equalRestores(restores, want) {
		t.Fatalf("restores = %+v\nwant %+v", restores, want)
	}
	// Nothing of ours was left in api but the session's marker, which the edit kept: the restore removes it alone.
	delete(deployed, MarkerKey)
	assertEnv(t, sim, "api", deployed)
	wantWorker := map[string]string{"STP_POSTGRES_DB_HOST": "127.0.0.1", "STP_POSTGRES_DB_PORT": "6000", "QUEUE": "jobs"}
	assertEnv(t, sim, "worker", wantWorker)
	if sim.Updates("api") != 2 {
		t.Fatalf("api written %d times; want the patch and the removal of the marker", sim.Updates("api"))
	}
}

func TestForceRestoresChangedKeys(t *testing.T) {
	sim := newSim(t, apiFn)
	p := newPatcher(t, lambdaClient(sim, nil))
	ctx := ctxT(t)
	res, err := p.Patch(ctx, allPlans()[:1])
	if err != nil {
		t.Fatal(err)
	}
	changed := envOf(t, sim, "api")
	changed["STP_POSTGRES_DB_CONNECTION_STRING"] = "postgres://x@elsewhere:1/db"
	sim.SetEnv("api", changed)
	var entries []Entry
	for _, pa := range res.Patches { // from the document this time
		entries = append(entries, EntryFromPatch(pa, "", testSession.ID))
	}
	restores, err := p.Restore(ctx, entries, RestoreOptions{Force: true})
	if err != nil || len(restores) != 1 || restores[0].State != doc.RestoreRestored {
		t.Fatalf("restores = %+v, %v", restores, err)
	}
	assertEnv(t, sim, "api", apiFn.Env)
}

func TestRestoreGoneFunctionAndFilter(t *testing.T) {
	sim := newSim(t, apiFn, workerFn)
	p := newPatcher(t, lambdaClient(sim, nil))
	ctx := ctxT(t)
	if _, err := p.Patch(ctx, allPlans()[:2]); err != nil {
		t.Fatal(err)
	}
	sim.DeleteFunction("api")
	restores, err := p.Restore(ctx, p.Journal.Entries(), RestoreOptions{Functions: []string{"api"}})
	if err != nil || len(restores) != 1 || restores[0].State != doc.RestoreGone {
		t.Fatalf("restores = %+v, %v", restores, err)
	}
	if p.Journal.Len() != 1 {
		t.Fatalf("journal holds %d entries; want worker's only", p.Journal.Len())
	}
	if _, u := calls(sim); u != 2 {
		t.Fatalf("--function api wrote worker too (%d updates)", u)
	}
}

func TestRepatchKeepsOriginalBefore(t *testing.T) {
	sim := newSim(t, apiFn)
	p := newPatcher(t, lambdaClient(sim, nil))
	ctx := ctxT(t)
	if _, err := p.Patch(ctx, []Plan{plan("api", 40001, "STP_POSTGRES_DB_CONNECTION_STRING")}); err != nil {
		t.Fatal(err)
	}
	res, err := p.Patch(ctx, []Plan{plan("api", 40005, "STP_POSTGRES_DB_CONNECTION_STRING")})
	if err != nil {
		t.Fatal(err)
	}
	want := doc.Change{Env: "STP_POSTGRES_DB_CONNECTION_STRING", Existed: true,
		Before: apiFn.Env["STP_POSTGRES_DB_CONNECTION_STRING"], After: "postgres://app:s3cret@127.0.0.1:40005/app?sslmode=disable"}
	if len(res.Patches) != 1 || len(res.Patches[0].Changes) != 1 || res.Patches[0].Changes[0] != want {
		t.Fatalf("re-patch = %+v", res.Patches)
	}
	if sim.Updates("api") != 2 {
		t.Fatalf("re-patch took %d updates, want 1", sim.Updates("api")-1)
	}
	e := p.Journal.Entries()
	if len(e) != 1 || len(e[0].Changes) != 1 || e[0].Changes[0].Change != want || len(e[0].Changes[0].Superseded) != 0 {
		t.Fatalf("journal = %+v", e)
	}
	// Patching again with the same address writes nothing.
	if _, err := p.Patch(ctx, []Plan{plan("api", 40005, "STP_POSTGRES_DB_CONNECTION_STRING")}); err != nil || sim.Updates("api") != 2 {
		t.Fatalf("same patch again: %d updates, %v", sim.Updates("api"), err)
	}
	if _, err := p.Restore(ctx, p.Journal.Entries(), RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	assertEnv(t, sim, "api", apiFn.Env)
}

func TestFaultsAreSurvived(t *testing.T) {
	cases := []struct {
		name  string
		op    string
		fault awssim.Fault
	}{
		{"conflict on update", "UpdateFunctionConfiguration", awssim.Fault{Kind: awssim.FaultConflict, Next: 2}},
		{"throttling beyond the SDK's retries", "UpdateFunctionConfiguration", awssim.Fault{Kind: awssim.FaultThrottle, Next: 5}},
		{"5xx on reads", "GetFunction", awssim.Fault{Kind: awssim.FaultServerError, Next: 4}},
		{"dropped connections", "UpdateFunctionConfiguration", awssim.Fault{Kind: awssim.FaultDrop, Next: 4}},
		{"random throttling everywhere", "*", awssim.Fault{Kind: awssim.FaultThrottle, Rate: 0.3}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sim := newSim(t, apiFn, workerFn, ordersFn)
			p := newPatcher(t, lambdaClient(sim, nil))
			ctx := ctxT(t)
			sim.SetFault(c.op, c.fault)
			if _, err := p.Patch(ctx, allPlans()); err != nil {
				t.Fatalf("patch: %v", err)
			}
			if got := envOf(t, sim, "api")["STP_POSTGRES_DB_CONNECTION_STRING"]; !strings.Contains(got, "127.0.0.1:40001") {
				t.Fatalf("api not patched: %q", got)
			}
			sim.SetFault(c.op, c.fault)
			if _, err := p.Restore(ctx, p.Journal.Entries(), RestoreOptions{}); err != nil {
				t.Fatalf("restore: %v", err)
			}
			assertEnv(t, sim, "api", apiFn.Env)
			assertEnv(t, sim, "worker", workerFn.Env)
			assertEnv(t, sim, "orders", ordersFn.Env)
		})
	}
}

// deployOnFirstUpdate is a transport that, before the first UpdateFunctionConfiguration of fn reaches the
// emulator, deploys env out of band: the update then carries a stale RevisionId and meets a 412.
func deployOnFirstUpdate(sim *awssim.Server, fn string, change func(map[string]string)) func(http.RoundTripper) http.RoundTripper {
	var once sync.Once
	return func(next http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if r.Method == http.MethodPut && strings.Contains(r.URL.Path, fn) {
				once.Do(func() {
					env, _ := sim.Env(fn)
					change(env)
					sim.SetEnv(fn, env)
				})
			}
			return next.RoundTrip(r)
		})
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestPreconditionRaceIsRecomputed(t *testing.T) {
	sim := newSim(t, apiFn)
	ctx := ctxT(t)
	// Patch: a deploy lands between our read and our write; it must survive, and ours must land too.
	p := newPatcher(t, lambdaClient(sim, deployOnFirstUpdate(sim, "api", func(env map[string]string) { env["DEPLOYED"] = "1" })))
	if _, err := p.Patch(ctx, allPlans()[:1]); err != nil {
		t.Fatal(err)
	}
	env := envOf(t, sim, "api")
	if env["DEPLOYED"] != "1" || !strings.Contains(env["STP_POSTGRES_DB_CONNECTION_STRING"], "40001") {
		t.Fatalf("after the race: %v", env)
	}
	if sim.Calls("UpdateFunctionConfiguration") != 2 {
		t.Fatalf("%d update calls, want 2 (412, then the recomputed write)", sim.Calls("UpdateFunctionConfiguration"))
	}
	// Restore: the same race; the deploy's key survives, ours go back.
	p.Client = lambdaClient(sim, deployOnFirstUpdate(sim, "api", func(env map[string]string) { env["DEPLOYED"] = "2" }))
	if _, err := p.Restore(ctx, p.Journal.Entries(), RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"DEPLOYED": "2"}
	for k, v := range apiFn.Env {
		want[k] = v
	}
	assertEnv(t, sim, "api", want)
}

func TestUnreadableOrUnwritableFunctionsAreNeverWritten(t *testing.T) {
	big := map[string]string{"STP_POSTGRES_DB_CONNECTION_STRING": "postgres://localhost:5432/app"}
	big["PAD"] = strings.Repeat("x", MaxEnvSize-EnvSize(big)-len(`,"PAD":""`)) // exactly 4096: the patch adds bytes
	sim := newSim(t,
		awssim.Function{Name: "secret", Env: apiFn.Env, KMSError: "AccessDeniedException"},
		awssim.Function{Name: "big", Env: big},
		awssim.Function{Name: "reserved", Env: map[string]string{"STP_POSTGRES_DB_CONNECTION_STRING": "postgres://localhost:5432/app", "AWS_REGION": "x"}},
		awssim.Function{Name: "tls", Env: map[string]string{"STP_POSTGRES_DB_CONNECTION_STRING": "postgres://localhost:5432/app?sslmode=verify-full"}},
	)
	if EnvSize(big) != MaxEnvSize {
		t.Fatalf("test setup: big is %d bytes", EnvSize(big))
	}
	p := newPatcher(t, lambdaClient(sim, nil))
	var plans []Plan
	for _, fn := range []string{"secret", "big", "reserved", "tls", "missing"} {
		plans = append(plans, plan(fn, 40001, "STP_POSTGRES_DB_CONNECTION_STRING"))
	}
	res, err := p.Patch(ctxT(t), plans)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"secret": doc.ReasonNoAccess, "big": doc.ReasonTooLarge, "reserved": doc.ReasonReservedKey,
		"tls": ReasonUnsupported, "missing": doc.ReasonNotFound}
	got := map[string]string{}
	for _, s := range res.Skipped {
		got[s.Function] = s.Reason
		if strings.Contains(s.Message, "localhost:5432") {
			t.Errorf("skip message shows a value: %q", s.Message)
		}
	}
	if len(res.Patches) != 0 || len(got) != len(want) {
		t.Fatalf("result = %+v", res)
	}
	for fn, reason := range want {
		if got[fn] != reason {
			t.Errorf("%s skipped as %q, want %q", fn, got[fn], reason)
		}
	}
	if u := sim.Calls("UpdateFunctionConfiguration"); u != 0 || p.Journal.Len() != 0 {
		t.Fatalf("%d updates, %d journal entries; want none", u, p.Journal.Len())
	}
}

func TestConcurrentPatchesSerialiseTheJournal(t *testing.T) {
	var fns []awssim.Function
	var plans []Plan
	for i := range 20 {
		name := "fn" + string(rune('a'+i))
		fns = append(fns, awssim.Function{Name: name, Env: apiFn.Env})
		plans = append(plans, plan(name, 40001, "STP_POSTGRES_DB_CONNECTION_STRING"))
	}
	sim := newSim(t, fns...)
	sim.SetUpdateDelay(20 * time.Millisecond)
	p := newPatcher(t, lambdaClient(sim, nil))
	p.Concurrency = 8
	if _, err := p.Patch(ctxT(t), plans); err != nil {
		t.Fatal(err)
	}
	j, err := OpenJournal(filepath.Dir(p.Journal.Path()))
	if err != nil || j.Len() != 20 {
		t.Fatalf("journal on disk has %d entries, %v", j.Len(), err)
	}
	if _, err := p.Restore(ctxT(t), j.Entries(), RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, f := range fns {
		assertEnv(t, sim, f.Name, f.Env)
	}
}

func equalRestores(a, b []doc.Restore) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Function != b[i].Function || a[i].State != b[i].State || len(a[i].Kept) != len(b[i].Kept) {
			return false
		}
		for k := range a[i].Kept {
			if a[i].Kept[k] != b[i].Kept[k] {
				return false
			}
		}
	}
	return true
}

// A crash leaves a pending entry whose update may or may not have landed, possibly a re-patch whose earlier value
// is still live: restore finishes all three.
func TestRestorePendingEntries(t *testing.T) {
	before := apiFn.Env["STP_POSTGRES_DB_CONNECTION_STRING"]
	at := func(port string) string { return strings.Replace(before, "localhost:5432", "127.0.0.1:"+port, 1) }
	cases := []struct{ name, live string }{
		{"update never landed", before},
		{"update landed", at("40005")},
		{"re-patch never landed: the earlier value is live", at("40001")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := maps.Clone(apiFn.Env)
			env["STP_POSTGRES_DB_CONNECTION_STRING"] = c.live
			sim := newSim(t, awssim.Function{Name: "api", Env: env})
			p := newPatcher(t, lambdaClient(sim, nil))
			entry := Entry{Function: "api", ARN: "arn:aws:lambda:eu-west-1:123456789012:function:api", Region: simRegion,
				State: doc.PatchPending, Changes: []Change{{
					Change:     doc.Change{Env: "STP_POSTGRES_DB_CONNECTION_STRING", Existed: true, Before: before, After: at("40005")},
					Superseded: []string{at("40001")},
				}}}
			if err := p.Journal.Put(entry); err != nil {
				t.Fatal(err)
			}
			restores, err := p.Restore(ctxT(t), p.Journal.Entries(), RestoreOptions{})
			if err != nil || len(restores) != 1 || restores[0].State == doc.RestorePartial {
				t.Fatalf("restores = %+v, %v", restores, err)
			}
			assertEnv(t, sim, "api", apiFn.Env)
			if p.Journal.Len() != 0 {
				t.Fatal("journal not cleared")
			}
		})
	}
}
