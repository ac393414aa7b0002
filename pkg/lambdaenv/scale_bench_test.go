package lambdaenv

import (
	"context"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"golang.org/x/sync/errgroup"

	"github.com/stptunnel/stptunnel/pkg/awssim"
	"github.com/stptunnel/stptunnel/pkg/doc"
)

// Session scale: patch and restore of many functions against the emulator. The tests assert what does not depend
// on timing (every function written once, API calls per function bounded, throttling absorbed); the benchmarks
// measure the time, against 50 ms of API latency and 1 s of update propagation, and report it with the calls per
// function so scripts/bench can print ratios against one function measured in the same run.

// scaleEnv is the original environment of scale function i.
func scaleEnv(i int) map[string]string {
	return map[string]string{
		"STP_POSTGRES_DB_CONNECTION_STRING": "postgres://app:s3cret@localhost:5432/app",
		"FUNCTION_INDEX":                    fmt.Sprint(i),
	}
}

// putScaleFunctions creates n functions bound to postgresDb by convention and returns one plan for each.
func putScaleFunctions(sim *awssim.Server, n int) []Plan {
	plans := make([]Plan, n)
	for i := range n {
		name := fmt.Sprintf("fn-%03d", i)
		sim.PutFunction(awssim.Function{Name: name, Env: scaleEnv(i)})
		plans[i] = plan(name, 40001, "STP_POSTGRES_DB_CONNECTION_STRING")
	}
	return plans
}

// controlPlaneOps are the operations under the control-plane quota that a session may call.
var controlPlaneOps = []string{"ListFunctions", "GetFunctionConfiguration", "UpdateFunctionConfiguration"}

// controlPlaneCalls is how many calls sim answered under the control-plane quota.
func controlPlaneCalls(sim *awssim.Server) int {
	n := 0
	for _, op := range controlPlaneOps {
		n += sim.Calls(op)
	}
	return n
}

// lambdaCalls is how many Lambda calls sim answered: the control plane's and GetFunction's.
func lambdaCalls(sim *awssim.Server) int { return controlPlaneCalls(sim) + sim.Calls("GetFunction") }

// throttledCalls is how many calls sim's quotas refused.
func throttledCalls(sim *awssim.Server) int {
	n := sim.Throttled("GetFunction")
	for _, op := range controlPlaneOps {
		n += sim.Throttled(op)
	}
	return n
}

// checkSession asserts that every plan's function was patched once and restored once, and is back as it was.
func checkSession(t *testing.T, sim *awssim.Server, plans []Plan, res Result, restores []doc.Restore) {
	t.Helper()
	if len(res.Patches) != len(plans) || len(res.Skipped) != 0 {
		t.Fatalf("patched %d of %d functions, skipped %v", len(res.Patches), len(plans), res.Skipped)
	}
	for _, p := range res.Patches {
		if p.State != doc.PatchApplied {
			t.Errorf("%s: state %s, want applied", p.Function, p.State)
		}
	}
	if len(restores) != len(plans) {
		t.Fatalf("restored %d of %d functions", len(restores), len(plans))
	}
	for _, r := range restores {
		if r.State != doc.RestoreRestored {
			t.Errorf("%s: restore state %s (%s), want restored", r.Function, r.State, r.Message)
		}
	}
	for i, p := range plans {
		if n := sim.Updates(p.Function); n != 2 {
			t.Errorf("%s: %d accepted updates, want 2 (one patch, one restore)", p.Function, n)
		}
		if env := envOf(t, sim, p.Function); !maps.Equal(env, scaleEnv(i)) {
			t.Errorf("%s: after restore env = %v, want %v", p.Function, env, scaleEnv(i))
		}
	}
}

// TestSessionScaleCallsPerFunction patches and restores 100 functions under the emulator's quotas and bounds the
// API calls each one costs. The bound does not depend on timing: the update stays in progress for 2 poll intervals,
// and waitIdle sleeps 1, then 1.5 poll intervals before its reads, so at most 2 reads follow a write however slow
// the machine is. Per function: 1 read (GetFunction) + 1 write + at most 2 reads (GetFunction) while the update goes
// live, and of those only the write under the control-plane quota. The pacing keeps every call within the quotas:
// none is throttled.
func TestSessionScaleCallsPerFunction(t *testing.T) {
	const n, maxCallsPerFunction = 100, 4
	poll := 20 * time.Millisecond
	sim, err := awssim.New(awssim.Options{Region: simRegion, UpdateDelay: 2 * poll, Quotas: testQuotas})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	plans := putScaleFunctions(sim, n)
	p := newPatcher(t, lambdaClient(sim, nil))
	p.PollInterval = poll
	ctx := ctxT(t)

	res, err := p.Patch(ctx, plans)
	if err != nil {
		t.Fatal(err)
	}
	patchCalls, patchControl := lambdaCalls(sim), controlPlaneCalls(sim)
	t.Logf("patch: %.2f calls per function, %.2f of them control-plane", float64(patchCalls)/n, float64(patchControl)/n)
	if patchCalls > n*maxCallsPerFunction {
		t.Errorf("patch: %d calls for %d functions (%.1f per function), want at most %d per function",
			patchCalls, n, float64(patchCalls)/n, maxCallsPerFunction)
	}
	if got := sim.Calls("UpdateFunctionConfiguration"); got != n || patchControl != n {
		t.Errorf("patch: %d control-plane calls, %d of them UpdateFunctionConfiguration; want exactly %d updates and nothing else", patchControl, got, n)
	}
	restores, err := p.Restore(ctx, p.Journal.Entries(), RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	restoreCalls, restoreControl := lambdaCalls(sim)-patchCalls, controlPlaneCalls(sim)-patchControl
	t.Logf("restore: %.2f calls per function, %.2f of them control-plane", float64(restoreCalls)/n, float64(restoreControl)/n)
	if restoreCalls > n*maxCallsPerFunction {
		t.Errorf("restore: %d calls for %d functions (%.1f per function), want at most %d per function",
			restoreCalls, n, float64(restoreCalls)/n, maxCallsPerFunction)
	}
	if restoreControl != n {
		t.Errorf("restore: %d control-plane calls, want exactly the %d updates", restoreControl, n)
	}
	if th := throttledCalls(sim); th != 0 {
		t.Errorf("%d calls throttled: the pacing collided with the quotas", th)
	}
	checkSession(t, sim, plans, res, restores)
	if p.Journal.Len() != 0 {
		t.Errorf("journal still holds %d entries after the restore", p.Journal.Len())
	}
}

// TestSessionScaleThrottled patches and restores 100 functions while a fifth of all calls are throttled on top of
// the quotas: no function fails, each is written exactly once per step, and the throttled calls were retried, not
// dropped.
func TestSessionScaleThrottled(t *testing.T) {
	const n = 100
	sim, err := awssim.New(awssim.Options{Region: simRegion, Seed: 13, Quotas: testQuotas})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	plans := putScaleFunctions(sim, n)
	sim.SetFault("*", awssim.Fault{Kind: awssim.FaultThrottle, Rate: 0.2})
	p := newPatcher(t, lambdaClient(sim, nil))
	ctx := ctxT(t)

	res, err := p.Patch(ctx, plans)
	if err != nil {
		t.Fatalf("patch under throttling: %v", err)
	}
	restores, err := p.Restore(ctx, p.Journal.Entries(), RestoreOptions{})
	if err != nil {
		t.Fatalf("restore under throttling: %v", err)
	}
	checkSession(t, sim, plans, res, restores)
	// 3 calls per function per step at least (read, write, one read after the write); a fifth of the calls
	// throttled means more than that were made.
	if calls := lambdaCalls(sim); calls <= 6*n {
		t.Errorf("%d calls with a 20%% throttle rate: the throttled calls were not retried", calls)
	}
}

// TestPatchUnderLambdaQuotas patches and restores 30 functions against Lambda's real quotas (15 control-plane and
// 100 GetFunction requests per second, the emulator's default) with the Patcher's default pacing: no failure, one
// update per function and step, and not one call refused by the quotas.
func TestPatchUnderLambdaQuotas(t *testing.T) {
	const n = 30
	sim, err := awssim.New(awssim.Options{Region: simRegion, UpdateDelay: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	if q := sim.Quotas(); q != awssim.LambdaQuotas {
		t.Fatalf("the emulator's default quotas are %+v, want Lambda's %+v", q, awssim.LambdaQuotas)
	}
	plans := putScaleFunctions(sim, n)
	p := newPatcher(t, lambdaClient(sim, nil))
	p.ControlPlaneRate, p.GetFunctionRate = 0, 0 // the defaults: Lambda's quotas
	p.PollInterval = 20 * time.Millisecond
	ctx := ctxT(t)

	res, err := p.Patch(ctx, plans)
	if err != nil {
		t.Fatalf("patch: %v", err)
	}
	restores, err := p.Restore(ctx, p.Journal.Entries(), RestoreOptions{})
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	checkSession(t, sim, plans, res, restores)
	if th, cp := throttledCalls(sim), controlPlaneCalls(sim); th != 0 || cp != 2*n {
		t.Errorf("%d calls throttled, %d control-plane calls; want none throttled and exactly %d updates", th, cp, 2*n)
	}
}

// TestPatchSharesTheQuota patches 40 functions while another client of the account spends half the control-plane
// quota: the Patcher, paced to the whole quota, contends with it (429s for one or the other, depending on who comes
// first), holds its calls for a 429's Retry-After, slows down, and finishes with no failure and one update per
// function.
func TestPatchSharesTheQuota(t *testing.T) {
	const n, quota = 40, 30
	sim, err := awssim.New(awssim.Options{Region: simRegion, Quotas: awssim.Quotas{ControlPlane: quota}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	plans := putScaleFunctions(sim, n)
	ctx := ctxT(t)

	// The neighbour: a client without retries that has just spent the whole bucket, and goes on reading a function
	// at half the quota.
	neighbour := lambda.NewFromConfig(aws.Config{Region: simRegion, BaseEndpoint: aws.String(sim.URL()), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDNEIGHBOUR", "secret", "")})
	for range quota {
		_, _ = neighbour.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("fn-000")})
	}
	nctx, stop := context.WithCancel(ctx)
	var g errgroup.Group
	g.Go(func() error {
		tick := time.NewTicker(time.Second / (quota / 2))
		defer tick.Stop()
		for {
			select {
			case <-nctx.Done():
				return nil
			case <-tick.C:
				_, _ = neighbour.GetFunctionConfiguration(nctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("fn-000")})
			}
		}
	})
	defer func() { stop(); _ = g.Wait() }()

	p := newPatcher(t, lambdaClient(sim, nil))
	p.ControlPlaneRate = quota
	p.RetryMax = 200 * time.Millisecond // the longest a 429's Retry-After holds the calls
	res, err := p.Patch(ctx, plans)
	if err != nil {
		t.Fatalf("patch sharing the quota: %v", err)
	}
	stop()
	_ = g.Wait()
	if applied(res) != n {
		t.Fatalf("%d of %d functions patched", applied(res), n)
	}
	for _, pl := range plans {
		if u := sim.Updates(pl.Function); u != 1 {
			t.Errorf("%s: %d accepted updates, want 1", pl.Function, u)
		}
	}
	t.Logf("patch: %d UpdateFunctionConfiguration answered, %d throttled; the neighbour: %d answered, %d throttled",
		sim.Calls("UpdateFunctionConfiguration"), sim.Throttled("UpdateFunctionConfiguration"),
		sim.Calls("GetFunctionConfiguration"), sim.Throttled("GetFunctionConfiguration"))
	if throttledCalls(sim) == 0 {
		t.Errorf("no call was throttled: the test did not contend for the quota")
	}
}

// Benchmark set-up, as DESIGN.md's session sees it: 50 ms per API call, 1 s before an update is live.
const (
	benchLatency     = 50 * time.Millisecond
	benchUpdateDelay = time.Second
)

// benchClient is a Lambda client of sim as `env patch` builds one: the SDK's default retryer (3 attempts,
// exponential back-off with jitter, client-side retry quota) and HTTP client.
func benchClient(sim *awssim.Server) *lambda.Client {
	return lambda.NewFromConfig(aws.Config{
		Region:       simRegion,
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDAWSSIM", "secret", ""),
		BaseEndpoint: aws.String(sim.URL()),
	})
}

// sessionMode is how a benchmark patches and restores.
type sessionMode struct {
	name        string
	concurrency func(n int) int
	// waitAll writes every function without waiting (Wait false), then waits for all the updates together, the
	// polls unbounded: the alternative to Concurrency bounding every call, waits included (apiSlots).
	waitAll  bool
	throttle float64 // rate of throttled calls
}

var sessionModes = []sessionMode{
	{name: "default", concurrency: func(int) int { return DefaultConcurrency }},
	{name: "waitall", concurrency: func(int) int { return DefaultConcurrency }, waitAll: true},
	{name: "conc32", concurrency: func(int) int { return 32 }},
	{name: "throttle10", concurrency: func(int) int { return DefaultConcurrency }, throttle: 0.1},
}

// BenchmarkSession patches then restores n functions (sub-benchmark mode=M/n=N). Reported: patch-s and
// restore-s (seconds per step), patch-calls/fn and restore-calls/fn (GetFunctionConfiguration +
// UpdateFunctionConfiguration per function), failures (functions not patched or not restored; must be 0).
// One iteration takes seconds: run with -benchtime=1x.
func BenchmarkSession(b *testing.B) {
	for _, mode := range sessionModes {
		for _, n := range []int{1, 10, 100, 300} {
			if mode.throttle > 0 && n != 1 && n != 100 {
				continue
			}
			b.Run(fmt.Sprintf("mode=%s/n=%d", mode.name, n), func(b *testing.B) {
				var patchTime, restoreTime time.Duration
				var patchCalls, restoreCalls, failures int
				for range b.N {
					pt, rt, pc, rc, f := runSession(b, mode, n)
					patchTime += pt
					restoreTime += rt
					patchCalls += pc
					restoreCalls += rc
					failures += f
				}
				runs := float64(b.N)
				b.ReportMetric(patchTime.Seconds()/runs, "patch-s")
				b.ReportMetric(restoreTime.Seconds()/runs, "restore-s")
				b.ReportMetric(float64(patchCalls)/runs/float64(n), "patch-calls/fn")
				b.ReportMetric(float64(restoreCalls)/runs/float64(n), "restore-calls/fn")
				b.ReportMetric(float64(failures)/runs, "failures")
			})
		}
	}
}

// runSession patches and restores n fresh functions once and measures each step.
func runSession(b *testing.B, mode sessionMode, n int) (patchTime, restoreTime time.Duration, patchCalls, restoreCalls, failures int) {
	b.StopTimer()
	sim, err := awssim.New(awssim.Options{Region: simRegion, UpdateDelay: benchUpdateDelay, Seed: 13})
	if err != nil {
		b.Fatal(err)
	}
	defer sim.Close()
	plans := putScaleFunctions(sim, n)
	fault := awssim.Fault{Latency: benchLatency}
	if mode.throttle > 0 {
		fault.Kind, fault.Rate = awssim.FaultThrottle, mode.throttle
	}
	sim.SetFault("*", fault)
	j, err := OpenJournal(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	p := &Patcher{Client: benchClient(sim), Journal: j, Concurrency: mode.concurrency(n), Wait: !mode.waitAll}
	ctx, cancel := context.WithTimeout(b.Context(), 10*time.Minute)
	defer cancel()
	b.StartTimer()

	start := time.Now()
	res, err := p.Patch(ctx, plans)
	if mode.waitAll {
		err = waitAll(ctx, p, refsOf(res.Patches), err)
	}
	patchTime = time.Since(start)
	patchCalls = lambdaCalls(sim)
	if err != nil {
		b.Logf("patch: %v", err)
	}
	failures += n - applied(res)

	start = time.Now()
	restores, err := p.Restore(ctx, j.Entries(), RestoreOptions{})
	if mode.waitAll {
		var refs []string
		for _, r := range restores {
			refs = append(refs, r.Function)
		}
		err = waitAll(ctx, p, refs, err)
	}
	restoreTime = time.Since(start)
	restoreCalls = lambdaCalls(sim) - patchCalls
	if err != nil {
		b.Logf("restore: %v", err)
	}
	for _, r := range restores {
		if r.State != doc.RestoreRestored {
			failures++
		}
	}
	failures += n - len(restores)
	b.StopTimer()
	return patchTime, restoreTime, patchCalls, restoreCalls, failures
}

func refsOf(patches []doc.Patch) []string {
	refs := make([]string, len(patches))
	for i, p := range patches {
		refs[i] = p.ARN
	}
	return refs
}

func applied(res Result) int {
	n := 0
	for _, p := range res.Patches {
		if p.State == doc.PatchApplied {
			n++
		}
	}
	return n
}

// waitAll waits, all at once, until every function's last update is live: the second phase of the waitall mode.
// Waiting costs no API slot while it sleeps, so it is not bounded by Concurrency.
func waitAll(ctx context.Context, p *Patcher, refs []string, err error) error {
	var g errgroup.Group
	for _, ref := range refs {
		g.Go(func() error {
			if _, werr := (writer{p: p, ref: ref, name: ref}).waitIdle(ctx); werr != nil {
				return fmt.Errorf("%s: %w", ref, werr)
			}
			return nil
		})
	}
	if werr := g.Wait(); werr != nil && err == nil {
		err = werr
	}
	return err
}

// BenchmarkJournal is the journal's share of a session of n functions (n=10, the baseline, and n=300): every
// function journalled pending, then applied, then removed by the restore. Each write replaces the whole file
// (temp file, fsync, rename) under the journal's lock: three fsyncs per function, one after the other whatever
// the Patcher's Concurrency, and a file that grows with the number of functions. Reported: ms/fn.
func BenchmarkJournal(b *testing.B) {
	for _, n := range []int{10, 300} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				j, err := OpenJournal(b.TempDir())
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				journalSession(b, j, n)
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N)/float64(n), "ms/fn")
		})
	}
}

func journalSession(b *testing.B, j *Journal, n int) {
	for _, state := range []string{doc.PatchPending, doc.PatchApplied} {
		for i := range n {
			e := Entry{Function: fmt.Sprintf("fn-%03d", i), ARN: fmt.Sprintf("arn:aws:lambda:eu-west-1:123456789012:function:fn-%03d", i),
				Region: simRegion, State: state, Revision: "r",
				Changes: []Change{{Change: doc.Change{Env: "STP_POSTGRES_DB_CONNECTION_STRING", Existed: true,
					Before: scaleEnv(i)["STP_POSTGRES_DB_CONNECTION_STRING"], After: "postgres://app:s3cret@bore.pub:40001/app"}}}}
			if err := j.Put(e); err != nil {
				b.Fatal(err)
			}
		}
	}
	for _, e := range j.Entries() {
		if err := j.Remove(e.ARN); err != nil {
			b.Fatal(err)
		}
	}
}
