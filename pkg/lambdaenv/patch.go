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
	// Session is who patches: every patch writes its marker (STPTUNNEL_SESSION, marker.go) in the same update,
	// and the journal records its id. A function whose marker carries another session's id is skipped as in-use.
	Session Session
	// TakeOver patches the functions another session holds anyway, keeping that session's values before as the
	// originals (so whichever session restores, the function gets its deployed values back) and the values it
	// wrote to the keys this session leaves alone.
	TakeOver bool
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
	// EventNoMarker: the function was patched without its session marker, which would not fit in Lambda's 4 KB:
	// only this machine's journal can restore it, and other sessions will not see it is in use.
	EventNoMarker EventKind = "no-marker"
)

// Event is one step of a patch or a restore, for progress output. Err and Keys never carry variable values.
type Event struct {
	Kind     EventKind
	Function string
	Reason   string   // EventSkipped: a doc.Reason* or ReasonUnsupported
	Keys     []string // EventKept: the keys kept
	// Holder, for EventSkipped with doc.ReasonInUse and EventKept, is the marker of the session that holds the
	// function (nil when none does, or its marker cannot be read). It carries deployed values: never print it.
	Holder *Marker
	Err    error
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
	Skipped []doc.Skip  // functions not written: not found, no access (KMS), limits, unsupported values, in use
	InUse   []InUse     // the functions of Skipped another session holds, in the order of the plans
}

// InUse is a function skipped because another session holds it.
type InUse struct {
	Function string
	// Marker is the holder's marker; nil when its STPTUNNEL_SESSION cannot be read (Err says why). It carries
	// deployed values: never print it.
	Marker *Marker
	Err    error
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
	switch {
	case p.Journal == nil && !p.DryRun:
		return Result{}, errors.New("patching: no journal: refusing to write functions that could not be restored")
	case p.Session.ID == "" && !p.DryRun:
		return Result{}, errors.New("patching: no session id: refusing to write functions other sessions could not tell apart")
	}
	patches := make([]*doc.Patch, len(plans))
	skips := make([]*doc.Skip, len(plans))
	inUse := make([]*InUse, len(plans))
	errs := make([]error, len(plans))
	slots := newAPISlots(p.concurrency())
	g, ctx := errgroup.WithContext(ctx)
	for i, plan := range plans {
		g.Go(func() error {
			patch, skip, held, err := p.patchOne(ctx, plan, slots)
			patches[i], skips[i], inUse[i] = patch, skip, held
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
		if inUse[i] != nil {
			res.InUse = append(res.InUse, *inUse[i])
		}
	}
	return res, errors.Join(errs...)
}

func (p *Patcher) patchOne(ctx context.Context, plan Plan, slots apiSlots) (*doc.Patch, *doc.Skip, *InUse, error) {
	ref := plan.ARN
	if ref == "" {
		ref = plan.Function
	}
	w := writer{p: p, ref: ref, name: plan.Function, slots: slots}
	region := p.Client.Options().Region
	var (
		entry    Entry // the journal entry as it stands, updated as the patch goes
		changes  []doc.Change
		kept     []string // why each binding is left as it is, when nothing is to be written
		skip     *doc.Skip
		inUse    *InUse
		noWrite  bool
		noMarker bool // the marker did not fit: written without it
	)
	skipWith := func(reason string, err error, holder *Marker) error {
		skip = &doc.Skip{Function: plan.Function, Reason: reason, Message: err.Error()}
		p.emit(Event{Kind: EventSkipped, Function: plan.Function, Reason: reason, Err: err, Holder: holder})
		return nil
	}
	cfg, wrote, err := w.run(ctx, func(cfg config) (map[string]string, bool, error) {
		skip, inUse, noWrite, noMarker = nil, nil, false, false
		if p.Journal != nil {
			entry, _ = p.Journal.Get(cfg.arn)
		}
		base, adopted, held := p.originals(cfg.env, entry)
		if held != nil {
			held.Function = plan.Function
			inUse = held
			if held.Marker == nil {
				return nil, false, skipWith(doc.ReasonInUse, fmt.Errorf("it carries %s, and %w", MarkerKey, held.Err), nil)
			}
			m := held.Marker
			return nil, false, skipWith(doc.ReasonInUse, fmt.Errorf("session %s of %s holds it since %s", m.ID, m.By, m.At), m)
		}
		next, _, decisions, err := Rewrite(base, plan.Bindings, plan.Targets)
		kept = kept[:0]
		for _, d := range decisions {
			if d.Action == ActionKeep {
				kept = append(kept, d.Why)
			}
		}
		var unsupported *connstr.Unsupported
		if errors.As(err, &unsupported) {
			return nil, false, skipWith(ReasonUnsupported, err, nil)
		}
		if err != nil {
			return nil, false, err
		}
		// Shared with the session taken over: the keys it wrote that this session leaves as they were keep its
		// values (its tunnels), and are now this session's to restore.
		for k := range adopted {
			if nv, nok := next[k]; nv == base[k] && nok == hasKey(base, k) {
				next[k] = cfg.env[k]
			}
		}
		if err := CheckLimits(next); err != nil {
			var le *LimitError
			errors.As(err, &le)
			return nil, false, skipWith(le.Reason, err, nil)
		}
		changes = diff(base, next)
		write := next
		if len(changes) > 0 {
			marked := maps.Clone(next)
			marked[MarkerKey] = newMarker(p.Session, publicAddresses(plan, decisions), changes).Encode()
			if CheckLimits(marked) == nil {
				write = marked
			} else {
				noMarker = true
			}
		}
		if p.DryRun || maps.Equal(write, cfg.env) {
			noWrite = true
			return nil, false, nil
		}
		return write, true, nil
	}, func(cfg config, next map[string]string) func() error {
		// Staged now, on disk before the update is sent: the update's turn under the quota comes later than the
		// reads of the functions behind it, so one write carries the pending entries of all those read meanwhile.
		entry = pendingEntry(cfg, region, p.Session.ID, entry, changes)
		return p.Journal.stage(entry, p.Session)
	})
	var noAccess *NoAccessError
	switch {
	case errors.Is(err, ErrNotFound):
		_ = skipWith(doc.ReasonNotFound, errors.New("the function does not exist (deploy it first)"), nil)
		return nil, skip, nil, nil
	case errors.As(err, &noAccess):
		_ = skipWith(doc.ReasonNoAccess, noAccess, nil)
		return nil, skip, nil, nil
	case err != nil && entry.State == doc.PatchPending:
		pending := entry.Patch()
		return &pending, nil, nil, err
	case err != nil:
		return nil, nil, nil, err
	case skip != nil:
		return nil, skip, inUse, nil
	}
	patch := &doc.Patch{Function: plan.Function, ARN: cfg.arn, Revision: cfg.revision, Changes: changes}
	if patch.Changes == nil {
		patch.Changes = []doc.Change{}
	}
	switch {
	case p.DryRun:
		patch.State = doc.PatchDryRun
		p.emit(Event{Kind: EventPlanned, Function: plan.Function})
		return patch, nil, nil, nil
	case noWrite && len(changes) == 0:
		p.emit(Event{Kind: EventNothingToPatch, Function: plan.Function, Err: errors.New(strings.Join(kept, "; "))})
		return nil, nil, nil, nil
	}
	// Also when an earlier run already wrote these values. Staged: Patch syncs every applied mark once, at its end;
	// until then the entry on disk says pending, which restore finishes as well.
	p.Journal.Stage(appliedEntry(cfg, region, p.Session.ID, changes))
	patch.State = doc.PatchApplied
	if wrote && p.Wait {
		final, err := w.waitIdle(ctx)
		if err != nil {
			return patch, nil, nil, err
		}
		patch.Revision = final.revision
	}
	if noMarker {
		p.emit(Event{Kind: EventNoMarker, Function: plan.Function})
	}
	if noWrite {
		p.emit(Event{Kind: EventUpToDate, Function: plan.Function})
	} else {
		p.emit(Event{Kind: EventPatched, Function: plan.Function})
	}
	return patch, nil, nil, nil
}

// originals returns env as it was before any session — without the marker, each key this session (the journal
// entry) or the session whose marker it adopts wrote put back to its value before — and the marked keys adopted
// from another session (TakeOver). held is not nil when another session holds the function and it is not taken
// over: the function is not to be written.
//
// The function is this session's when its marker carries the session's id, or the id of the journal's entry for
// it (an earlier session of this state dir, which this one continues); its marker's keys the journal does not hold
// (patched from another machine) come back to their marked values before as well. A stale marker (none of its keys
// holds its session's value any more) holds nothing: the write drops it.
func (p *Patcher) originals(env map[string]string, entry Entry) (base map[string]string, adopted map[string]MarkedKey, held *InUse) {
	base = unapply(env, entry.Changes)
	delete(base, MarkerKey)
	m, ok, err := MarkerOf(env)
	switch {
	case !ok:
		return base, nil, nil
	case err != nil:
		return nil, nil, &InUse{Err: err}
	case m.ID == p.Session.ID || m.ID == entry.Session:
		revertMarked(base, env, m.Keys)
		return base, nil, nil
	case !m.live(env):
		return base, nil, nil // stale: it holds nothing
	case !p.TakeOver:
		return nil, nil, &InUse{Marker: &m}
	}
	adopted = map[string]MarkedKey{}
	for k, mk := range m.Keys {
		if v, has := env[k]; has && mk.holds(v) {
			adopted[k] = mk
		}
	}
	revertMarked(base, env, adopted)
	return base, adopted, nil
}

func hasKey(m map[string]string, k string) bool {
	_, ok := m[k]
	return ok
}

// publicAddresses are the tunnels' addresses the written variables point at, sorted: the marker's pub.
func publicAddresses(plan Plan, decisions []Decision) []string {
	var out []string
	for _, d := range decisions {
		if d.Action == ActionKeep {
			continue
		}
		if t, ok := plan.Targets[d.Binding.Resource]; ok && !slices.Contains(out, t.Public.String()) {
			out = append(out, t.Public.String())
		}
	}
	slices.Sort(out)
	return out
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
func pendingEntry(cfg config, region, session string, prior Entry, changes []doc.Change) Entry {
	e := Entry{Function: cfg.name, ARN: cfg.arn, Region: region, Session: session, State: doc.PatchPending, Revision: cfg.revision}
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
func appliedEntry(cfg config, region, session string, changes []doc.Change) Entry {
	e := Entry{Function: cfg.name, ARN: cfg.arn, Region: region, Session: session, State: doc.PatchApplied, Revision: cfg.revision}
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
