package lambdaenv

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"golang.org/x/sync/errgroup"

	"github.com/stptunnel/stptunnel/pkg/connstr"
	"github.com/stptunnel/stptunnel/pkg/doc"
)

// ReasonUnsupported is the skip reason of a function whose bound variable a tunnel cannot carry (a unix socket,
// TLS verifying the local hostname): it is reported, never written half-broken.
const ReasonUnsupported = "unsupported"

// Patcher patches and restores functions' variables through one Lambda client. Its zero timing fields take the
// defaults above. Journal may be nil only with DryRun.
//
// Every Lambda call is paced to the account's quotas (pace.go): reads and readiness polls use GetFunction, under its
// own quota (GetFunctionRate), so the control plane's (ControlPlaneRate) goes to the updates alone — one
// UpdateFunctionConfiguration per function, spaced 1/ControlPlaneRate apart, none spent on what an earlier answer
// already said. The pacing is shared by every Patch and Restore of the Patcher.
type Patcher struct {
	Client  *lambda.Client
	Journal *Journal
	// Concurrency is how many Lambda calls are in flight at once (DefaultConcurrency when 0). A function waiting
	// for its update to go live, for its turn under the quota, or backing off, holds none, so the others are
	// written meanwhile.
	Concurrency int
	// ControlPlaneRate and GetFunctionRate are the requests per second the Patcher allows itself under the
	// account's control-plane quota (UpdateFunctionConfiguration, GetFunctionConfiguration, ListFunctions) and
	// GetFunction's: DefaultControlPlaneRate and DefaultGetFunctionRate, Lambda's defaults, when 0. Lower them to
	// leave room for other clients of the account; a 429 slows the Patcher down by itself.
	ControlPlaneRate, GetFunctionRate float64
	// Wait waits, after each write, until the function's LastUpdateStatus is Successful.
	Wait bool
	// DryRun reads and computes, and writes nothing: neither the functions nor the journal.
	DryRun bool
	// Progress, when set, receives events as they happen, from several goroutines one at a time.
	Progress func(Event)

	RetryBase    time.Duration // first back-off delay after throttling, 5xx or a race
	RetryMax     time.Duration // longest back-off delay
	MaxAttempts  int           // read-modify-write attempts per function
	PollInterval time.Duration // first delay between two reads while an update is in progress
	WaitTimeout  time.Duration // how long one update may stay in progress

	progressMu sync.Mutex
	paceOnce   sync.Once
	pace       *pacers
}

// EventKind says what an Event reports.
type EventKind string

// Event kinds.
const (
	EventPatched  EventKind = "patched"    // a function's new variables were written (and are live, with Wait)
	EventPlanned  EventKind = "planned"    // dry run: what would be written
	EventUpToDate EventKind = "up-to-date" // patch: already written by an earlier run; restore: nothing of ours left
	// EventNothingToPatch: every bound variable is to be left as it is (Err says why: a variable bound by value
	// no longer names the local address, or is no longer set): nothing to write.
	EventNothingToPatch EventKind = "nothing-to-patch"
	EventSkipped        EventKind = "skipped" // Reason, Err say why; nothing was written
	EventRetry          EventKind = "retry"   // a transient error or a race; the work goes on
	EventRestored       EventKind = "restored"
	EventKept           EventKind = "kept" // Keys changed since the patch were left as they are
	EventGone           EventKind = "gone"
	EventFailed         EventKind = "failed"
)

// Event is one step of a patch or a restore, for progress output. Err and Keys never carry variable values.
type Event struct {
	Kind     EventKind
	Function string
	Reason   string   // EventSkipped: a doc.Reason* or ReasonUnsupported
	Keys     []string // EventKept: the keys kept
	Err      error
}

func (p *Patcher) emit(e Event) {
	if p.Progress == nil {
		return
	}
	p.progressMu.Lock()
	defer p.progressMu.Unlock()
	p.Progress(e)
}

// Plan is one function to patch: its bindings and where their resources are reachable now.
type Plan struct {
	Function string // name or ARN
	ARN      string // optional; used to call the function when set
	Bindings []doc.Binding
	Targets  map[string]Target // by resource name
}

// Result is the outcome of Patch.
type Result struct {
	Patches []doc.Patch // in the order of the plans; pending for a function whose write did not complete
	Skipped []doc.Skip  // functions not written: not found, no access (KMS), limits, unsupported values
}

// FunctionError is the failure of one function.
type FunctionError struct {
	Function string
	Err      error
}

func (e *FunctionError) Error() string { return e.Err.Error() } // Err names the function
func (e *FunctionError) Unwrap() error { return e.Err }

// Patch points the bound variables of every planned function at its targets, up to Concurrency calls at once,
// paced to the account's quotas. For each function it reads the configuration (GetFunction), computes the new map
// (Rewrite), checks Lambda's limits, journals the change (pending, on disk before the update: the functions read
// meanwhile share one write), writes it with RevisionId, marks it applied and, with Wait, polls GetFunction until it
// is Successful. The applied marks are written together once every function is done. The error joins a
// *FunctionError per function that failed; the Result holds everything that was done.
//
// Patch is also the re-patch: patching a function the journal already holds (a tunnel moved to another port)
// computes the new values from the original ones, in one write, and keeps the original before values, so restore
// still puts back what was there before the session.
func (p *Patcher) Patch(ctx context.Context, plans []Plan) (Result, error) {
	if p.Journal == nil && !p.DryRun {
		return Result{}, errors.New("patching: no journal: refusing to write functions that could not be restored")
	}
	patches := make([]*doc.Patch, len(plans))
	skips := make([]*doc.Skip, len(plans))
	errs := make([]error, len(plans))
	slots := newAPISlots(p.concurrency())
	g, ctx := errgroup.WithContext(ctx)
	for i, plan := range plans {
		g.Go(func() error {
			patch, skip, err := p.patchOne(ctx, plan, slots)
			patches[i], skips[i] = patch, skip
			if err != nil {
				errs[i] = &FunctionError{Function: plan.Function, Err: fmt.Errorf("patching %s: %w", plan.Function, err)}
				p.emit(Event{Kind: EventFailed, Function: plan.Function, Err: err})
			}
			return nil // one function's failure does not stop the others
		})
	}
	_ = g.Wait()
	if p.Journal != nil && !p.DryRun {
		if err := p.Journal.Sync(); err != nil {
			errs = append(errs, fmt.Errorf("patching: recording the applied patches: %w", err))
		}
	}
	var res Result
	for i := range plans {
		if patches[i] != nil {
			res.Patches = append(res.Patches, *patches[i])
		}
		if skips[i] != nil {
			res.Skipped = append(res.Skipped, *skips[i])
		}
	}
	return res, errors.Join(errs...)
}

func (p *Patcher) patchOne(ctx context.Context, plan Plan, slots apiSlots) (*doc.Patch, *doc.Skip, error) {
	ref := plan.ARN
	if ref == "" {
		ref = plan.Function
	}
	w := writer{p: p, ref: ref, name: plan.Function, slots: slots}
	region := p.Client.Options().Region
	var (
		entry   Entry // the journal entry as it stands, updated as the patch goes
		changes []doc.Change
		kept    []string // why each binding is left as it is, when nothing is to be written
		skip    *doc.Skip
		noWrite bool
	)
	skipWith := func(reason string, err error) error {
		skip = &doc.Skip{Function: plan.Function, Reason: reason, Message: err.Error()}
		p.emit(Event{Kind: EventSkipped, Function: plan.Function, Reason: reason, Err: err})
		return nil
	}
	cfg, wrote, err := w.run(ctx, func(cfg config) (map[string]string, bool, error) {
		skip, noWrite = nil, false
		if p.Journal != nil {
			entry, _ = p.Journal.Get(cfg.arn)
		}
		base := unapply(cfg.env, entry.Changes)
		next, ch, decisions, err := Rewrite(base, plan.Bindings, plan.Targets)
		kept = kept[:0]
		for _, d := range decisions {
			if d.Action == ActionKeep {
				kept = append(kept, d.Why)
			}
		}
		var unsupported *connstr.Unsupported
		if errors.As(err, &unsupported) {
			return nil, false, skipWith(ReasonUnsupported, err)
		}
		if err != nil {
			return nil, false, err
		}
		if err := CheckLimits(next); err != nil {
			var le *LimitError
			errors.As(err, &le)
			return nil, false, skipWith(le.Reason, err)
		}
		changes = ch
		if p.DryRun || maps.Equal(next, cfg.env) {
			noWrite = true
			return nil, false, nil
		}
		return next, true, nil
	}, func(cfg config, next map[string]string) func() error {
		// Staged now, on disk before the update is sent: the update's turn under the quota comes later than the
		// reads of the functions behind it, so one write carries the pending entries of all those read meanwhile.
		entry = pendingEntry(cfg, region, entry, changes)
		return p.Journal.stage(entry)
	})
	var noAccess *NoAccessError
	switch {
	case errors.Is(err, ErrNotFound):
		_ = skipWith(doc.ReasonNotFound, errors.New("the function does not exist (deploy it first)"))
		return nil, skip, nil
	case errors.As(err, &noAccess):
		_ = skipWith(doc.ReasonNoAccess, noAccess)
		return nil, skip, nil
	case err != nil && entry.State == doc.PatchPending:
		pending := entry.Patch()
		return &pending, nil, err
	case err != nil:
		return nil, nil, err
	case skip != nil:
		return nil, skip, nil
	}
	patch := &doc.Patch{Function: plan.Function, ARN: cfg.arn, Revision: cfg.revision, Changes: changes}
	if patch.Changes == nil {
		patch.Changes = []doc.Change{}
	}
	switch {
	case p.DryRun:
		patch.State = doc.PatchDryRun
		p.emit(Event{Kind: EventPlanned, Function: plan.Function})
		return patch, nil, nil
	case noWrite && len(changes) == 0:
		p.emit(Event{Kind: EventNothingToPatch, Function: plan.Function, Err: errors.New(strings.Join(kept, "; "))})
		return nil, nil, nil
	}
	// Also when an earlier run already wrote these values. Staged: Patch syncs every applied mark once, at its end;
	// until then the entry on disk says pending, which restore finishes as well.
	p.Journal.Stage(appliedEntry(cfg, region, changes))
	patch.State = doc.PatchApplied
	if wrote && p.Wait {
		final, err := w.waitIdle(ctx)
		if err != nil {
			return patch, nil, err
		}
		patch.Revision = final.revision
	}
	if noWrite {
		p.emit(Event{Kind: EventUpToDate, Function: plan.Function})
	} else {
		p.emit(Event{Kind: EventPatched, Function: plan.Function})
	}
	return patch, nil, nil
}

// unapply returns current with every journalled key that still holds a value the session wrote put back to its
// before value (or removed, when the session added it): the function as it was before the session, plus whatever
// others changed since.
func unapply(current map[string]string, changes []Change) map[string]string {
	base := maps.Clone(current)
	for _, c := range changes {
		v, ok := current[c.Env]
		if !ok || !c.ours(v) {
			continue
		}
		if c.Existed {
			base[c.Env] = c.Before
		} else {
			delete(base, c.Env)
		}
	}
	return base
}

// pendingEntry is the journal entry written before an update: the new changes, and the earlier entry's changes
// still live on the function, so that a crash before the update lands leaves restore knowing both.
func pendingEntry(cfg config, region string, prior Entry, changes []doc.Change) Entry {
	e := Entry{Function: cfg.name, ARN: cfg.arn, Region: region, State: doc.PatchPending, Revision: cfg.revision}
	for _, c := range changes {
		jc := Change{Change: c}
		if i := slices.IndexFunc(prior.Changes, func(pc Change) bool { return pc.Env == c.Env }); i >= 0 {
			pc := prior.Changes[i]
			for _, v := range append([]string{pc.After}, pc.Superseded...) {
				if v != c.After && !slices.Contains(jc.Superseded, v) {
					jc.Superseded = append(jc.Superseded, v)
				}
			}
		}
		e.Changes = append(e.Changes, jc)
	}
	for _, pc := range prior.Changes {
		if v, ok := cfg.env[pc.Env]; ok && pc.ours(v) && !slices.ContainsFunc(changes, func(c doc.Change) bool { return c.Env == pc.Env }) {
			e.Changes = append(e.Changes, pc) // reverted by this write; until it lands, still ours
		}
	}
	slices.SortFunc(e.Changes, func(a, b Change) int { return strings.Compare(a.Env, b.Env) })
	return e
}

// appliedEntry is the journal entry once the write is accepted: exactly the changes now on the function.
func appliedEntry(cfg config, region string, changes []doc.Change) Entry {
	e := Entry{Function: cfg.name, ARN: cfg.arn, Region: region, State: doc.PatchApplied, Revision: cfg.revision}
	for _, c := range changes {
		e.Changes = append(e.Changes, Change{Change: c})
	}
	return e
}

// pacers are the Patcher's pacing of its calls, made on first use.
func (p *Patcher) pacers() *pacers {
	p.paceOnce.Do(func() {
		p.pace = &pacers{
			controlPlane: newPacer(orRate(p.ControlPlaneRate, DefaultControlPlaneRate)),
			getFunction:  newPacer(orRate(p.GetFunctionRate, DefaultGetFunctionRate)),
		}
	})
	return p.pace
}

func orRate(r, def float64) float64 {
	if r > 0 {
		return r
	}
	return def
}

func (p *Patcher) concurrency() int {
	if p.Concurrency > 0 {
		return p.Concurrency
	}
	return DefaultConcurrency
}

func (p *Patcher) retryBase() time.Duration { return orDuration(p.RetryBase, DefaultRetryBase) }
func (p *Patcher) retryMax() time.Duration  { return orDuration(p.RetryMax, DefaultRetryMax) }
func (p *Patcher) pollInterval() time.Duration {
	return orDuration(p.PollInterval, DefaultPollInterval)
}
func (p *Patcher) waitTimeout() time.Duration { return orDuration(p.WaitTimeout, DefaultWaitTimeout) }

func (p *Patcher) maxAttempts() int {
	if p.MaxAttempts > 0 {
		return p.MaxAttempts
	}
	return DefaultMaxAttempts
}

func orDuration(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
