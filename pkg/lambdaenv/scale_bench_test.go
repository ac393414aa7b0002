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

// Benchmark set-up, as CONTRACT.md's session sees it: 50 ms per API call, 1 s before an update is live, and Lambda's
// default quotas (15 control-plane requests per second, 100 GetFunction requests per second).
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
	name     string
	throttle float64 // rate of calls answered 429 on top of the quotas
	ns       []int
}

var sessionModes = []sessionMode{
	{name: "quota", ns: []int{1, 10, 100, 300}},
	{name: "throttle10", throttle: 0.1, ns: []int{1, 100}},
}

// sessionFloor is the least time a step of n functions can take under the control-plane quota: one
// UpdateFunctionConfiguration per function at 15 per second, then the last update's propagation.
func sessionFloor(n int) time.Duration {
	return time.Duration(float64(n)/awssim.LambdaQuotas.ControlPlane*float64(time.Second)) + benchUpdateDelay
}

// BenchmarkSession patches then restores n functions (sub-benchmark mode=M/n=N) against the emulator at Lambda's
// quotas. Reported per step (patch, restore): seconds, the ratio to the floor (n/15 s + 1 s of propagation,
// sessionFloor), control-plane calls per function (the floor is 1: the update), GetFunction calls per function
// (the read and the readiness polls), calls refused by the quotas (throttled; 0 when the pacing is right), journal
// writes, and failures (functions not patched or not restored; must be 0). One iteration takes seconds: run with
// -benchtime=1x.
func BenchmarkSession(b *testing.B) {
	for _, mode := range sessionModes {
		for _, n := range mode.ns {
			b.Run(fmt.Sprintf("mode=%s/n=%d", mode.name, n), func(b *testing.B) {
				var sum sessionRun
				for range b.N {
					sum.add(runSession(b, mode, n))
				}
				runs, fns := float64(b.N), float64(b.N*n)
				floor := sessionFloor(n).Seconds()
				for i, step := range []string{"patch", "restore"} {
					st := sum.steps[i]
					b.ReportMetric(st.time.Seconds()/runs, step+"-s")
					b.ReportMetric(st.time.Seconds()/runs/floor, step+"-floor-x")
					b.ReportMetric(float64(st.control)/fns, step+"-control/fn")
					b.ReportMetric(float64(st.getFunction)/fns, step+"-getfn/fn")
					b.ReportMetric(float64(st.throttled)/runs, step+"-throttled")
					b.ReportMetric(float64(st.journalWrites)/runs, step+"-journal-writes")
				}
				b.ReportMetric(float64(sum.failures)/runs, "failures")
			})
		}
	}
}

// sessionStep is what one step (patch or restore) of a session cost.
type sessionStep struct {
	time                                           time.Duration
	control, getFunction, throttled, journalWrites int
}

type sessionRun struct {
	steps    [2]sessionStep // patch, restore
	failures int
}

func (r *sessionRun) add(o sessionRun) {
	for i := range r.steps {
		r.steps[i].time += o.steps[i].time
		r.steps[i].control += o.steps[i].control
		r.steps[i].getFunction += o.steps[i].getFunction
		r.steps[i].throttled += o.steps[i].throttled
		r.steps[i].journalWrites += o.steps[i].journalWrites
	}
	r.failures += o.failures
}

// measureStep runs step and returns its time and the calls it cost.
func measureStep(sim *awssim.Server, j *Journal, step func()) sessionStep {
	control, getFunction, throttled, writes := controlPlaneCalls(sim), sim.Calls("GetFunction"), throttledCalls(sim), j.Writes()
	start := time.Now()
	step()
	return sessionStep{time: time.Since(start), control: controlPlaneCalls(sim) - control,
		getFunction: sim.Calls("GetFunction") - getFunction, throttled: throttledCalls(sim) - throttled,
		journalWrites: j.Writes() - writes}
}

// runSession patches and restores n fresh functions once and measures each step.
func runSession(b *testing.B, mode sessionMode, n int) sessionRun {
	b.StopTimer()
	defer b.StopTimer()
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
	p := &Patcher{Client: benchClient(sim), Journal: j, Wait: true, Session: testSession}
	ctx, cancel := context.WithTimeout(b.Context(), 10*time.Minute)
	defer cancel()
	b.StartTimer()

	var run sessionRun
	var res Result
	run.steps[0] = measureStep(sim, j, func() {
		if res, err = p.Patch(ctx, plans); err != nil {
			b.Logf("patch: %v", err)
		}
	})
	run.failures += n - applied(res)
	var restores []doc.Restore
	run.steps[1] = measureStep(sim, j, func() {
		if restores, err = p.Restore(ctx, j.Entries(), RestoreOptions{}); err != nil {
			b.Logf("restore: %v", err)
		}
	})
	for _, r := range restores {
		if r.State != doc.RestoreRestored {
			run.failures++
		}
	}
	run.failures += n - len(restores)
	return run
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

// BenchmarkJournal is the journal's share of a session of n functions (n=10 and n=300), measured two ways in the same
// run: serial, the baseline — every function journalled pending, then applied, then removed, one Put or Remove after
// the other, each a whole-file write (temp file, fsync, rename), as the journal did before group commit; and session,
// as Patch and Restore do it now — each pending entry staged and made durable by DefaultConcurrency goroutines at
// once (group commit: the commits made while a write is in flight share the next one), the applied marks staged
// and synced in one write, the removals likewise. Reported: ms/fn and writes/fn.
func BenchmarkJournal(b *testing.B) {
	for _, mode := range []string{"serial", "session"} {
		for _, n := range []int{10, 300} {
			b.Run(fmt.Sprintf("mode=%s/n=%d", mode, n), func(b *testing.B) {
				writes := 0
				for range b.N {
					b.StopTimer()
					j, err := OpenJournal(b.TempDir())
					if err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
					if mode == "serial" {
						journalSerial(b, j, n)
					} else {
						journalSession(b, j, n)
					}
					writes += j.Writes()
				}
				b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N)/float64(n), "ms/fn")
				b.ReportMetric(float64(writes)/float64(b.N)/float64(n), "writes/fn")
			})
		}
	}
}

func benchEntry(i int, state string) Entry {
	return Entry{Function: fmt.Sprintf("fn-%03d", i), ARN: fmt.Sprintf("arn:aws:lambda:eu-west-1:123456789012:function:fn-%03d", i),
		Region: simRegion, State: state, Revision: "r",
		Changes: []Change{{Change: doc.Change{Env: "STP_POSTGRES_DB_CONNECTION_STRING", Existed: true,
			Before: scaleEnv(i)["STP_POSTGRES_DB_CONNECTION_STRING"], After: "postgres://app:s3cret@bore.pub:40001/app"}}}}
}

func journalSerial(b *testing.B, j *Journal, n int) {
	for _, state := range []string{doc.PatchPending, doc.PatchApplied} {
		for i := range n {
			if err := j.Put(benchEntry(i, state)); err != nil {
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

func journalSession(b *testing.B, j *Journal, n int) {
	var g errgroup.Group
	g.SetLimit(DefaultConcurrency)
	for i := range n {
		g.Go(func() error { return j.stage(benchEntry(i, doc.PatchPending), testSession)() })
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	for i := range n {
		j.Stage(benchEntry(i, doc.PatchApplied))
	}
	if err := j.Sync(); err != nil {
		b.Fatal(err)
	}
	for _, e := range j.Entries() {
		j.StageRemove(e.ARN)
	}
	if err := j.Sync(); err != nil {
		b.Fatal(err)
	}
}
