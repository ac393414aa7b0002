package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/stptunnel/stptunnel/pkg/doc"
	"github.com/stptunnel/stptunnel/pkg/lambdaenv"
	"github.com/stptunnel/stptunnel/pkg/session"
	"github.com/stptunnel/stptunnel/pkg/tunnel"
)

// report renders one of the session's events: a line on stderr in stptunnel's words (values are never printed,
// only names, addresses and reasons, and every line is redacted), and under GitHub Actions the annotations and
// the job summary.
func (a *app) report(ev session.Event) {
	u := a.ui
	switch e := ev.(type) {
	case session.Bound:
		if e.Decision.Action != "" {
			u.info("%s: %s → %s (%s): %s", e.Function, e.Binding.Env, e.Binding.Resource, e.Binding.Via, e.Decision.Describe())
		} else {
			u.info("%s: %s → %s (%s)", e.Function, e.Binding.Env, e.Binding.Resource, e.Binding.Via)
		}
	case session.Warning:
		u.warn("%s", e.Message)
	case session.Skipped:
		u.warn("Skipping %s: %s", e.Skip.Function, e.Skip.Message)
		a.warnSkipped([]doc.Skip{e.Skip})
	case session.Found:
		if e.Functions == 0 {
			u.warn("No function uses a local resource (scanned %d)", e.Scanned)
		} else {
			u.ok("Found %s using local resources (scanned %d)", plural(e.Functions, "function"), e.Scanned)
		}
	case session.NothingToDo:
		u.info("%s", e.Message)
	case session.PublicServer:
		u.warn("%s is a public server: while this session runs, anyone who finds the port reaches %s. "+
			"For sensitive data use a self-hosted server (`stptunnel bore server --secret ...`)", e.Server, e.Resources)
	case session.TunnelStarted:
		if dialed := tunnel.DialedAddr(e.Tunnel); dialed != e.Tunnel.Public {
			u.ok("Starting tunnel: %s → %s (this machine reaches it at %s)", e.Tunnel.Resource, e.Tunnel.Public, dialed)
			break
		}
		u.ok("Starting tunnel: %s → %s", e.Tunnel.Resource, e.Tunnel.Public)
	case session.TunnelsHeld:
		u.info("Tunnels held by process %d; `stptunnel tunnel status` shows them, `stptunnel tunnel close` ends them", e.PID)
	case session.TunnelActivity:
		a.reportActivity(e.Tunnels)
	case session.TunnelChanged:
		a.reportTunnelEvent(e.Event)
	case session.Updating:
		if e.Wait {
			u.info("Updating %s; each is reported once its update is live...", plural(len(e.Functions), "function"))
			a.waits.start("Updating Lambda env vars", e.Functions)
		} else {
			u.info("Updating %s (--no-wait: not waiting for the updates to go live)...", plural(len(e.Functions), "function"))
		}
	case session.PatchProgress:
		a.reportPatch(e.Event)
		if e.Kind != lambdaenv.EventRetry {
			a.waits.done(e.Function)
		}
	case session.Ready:
		if e.DryRun {
			u.ok("Dry run: %s would use %s; nothing was written", plural(e.Patched, "function"), plural(e.Tunnels, "tunnel"))
		} else {
			u.ok("Ready: %s %s %s", plural(e.Patched, "function"), verb(e.Patched, "uses", "use"), plural(e.Tunnels, "tunnel"))
		}
		a.summarizeOrWarn(e.Doc, doc.FieldTunnels, doc.FieldPatches, doc.FieldSkipped)
	case session.Following:
		switch {
		case e.Done:
			u.ok("Functions using %s now point at %s", e.Resource, e.Public)
		case e.Server != e.PreviousServer:
			u.warn("Tunnel %s moved to bore server %s: %s → %s; patching its functions again", e.Resource, e.Server, e.Previous, e.Public)
		default:
			u.warn("Tunnel %s came back on a new address: %s → %s; patching its functions again", e.Resource, e.Previous, e.Public)
		}
	case session.Recovering:
		u.warn("An earlier session left %s patched: restoring it first", plural(e.Functions, "function"))
	case session.Restoring:
		u.info("Restoring Lambda env vars...")
		a.waits.start("Restoring Lambda env vars", e.Functions)
	case session.RestoreProgress:
		a.reportRestore(e.Event)
		if e.Kind != lambdaenv.EventRetry {
			a.waits.done(e.Function)
		}
	case session.Restored:
		a.waits.end()
		a.summarizeOrWarn(e.Doc, doc.FieldRestores)
		a.reportRestored(e.Restores)
	case session.LeftPatched:
		a.waits.end()
		a.summarizeOrWarn(e.Doc, doc.FieldRestores) // the session's error says which and why, once
	case session.CleanupInterrupted:
		if e.Abandoned {
			u.warn("Cleanup abandoned")
		} else {
			u.warn("Cleanup is running: press Ctrl+C again to abandon it (functions would stay patched)")
		}
	case session.Stopping:
		a.ui.setStatus(statusTunnels)
		u.info("Stopping tunnels...")
	case session.Stopped:
		u.ok("Tunnels stopped")
	case session.CleanupComplete:
		u.ok("Cleanup complete")
	case session.Signalled:
		if e.Starting {
			u.info("%s: stopping", e.Signal)
		} else {
			u.plain("")
		}
	case session.CommandOnly:
		u.info("--no-tunnel: running %s without tunnels", e.Command)
	case session.Waiting:
		u.info("Press Ctrl+C to restore the functions and close the tunnels")
	case session.Failed:
		a.waits.end()
		u.fail("%v", e.Err)
	case session.InUse:
		a.maskMarker(e.Holder)
		a.waits.done(e.Function)
		u.warn("Skipping %s: %s", e.Function, e.Message)
		a.warnSkipped([]doc.Skip{{Function: e.Function, Reason: doc.ReasonInUse, Message: e.Message}})
	case session.FromMarkers:
		for i := range e.Markers {
			a.maskMarker(&e.Markers[i])
		}
		u.info("Restoring from their session markers (no journal here holds them): %s", strings.Join(e.Functions, ", "))
	case session.Status:
		for _, m := range e.Raw {
			a.maskMarker(m)
		}
		a.statusTable(e)
	}
}

// statusTable prints env status's table on stderr: one line per function held, key names only.
func (a *app) statusTable(e session.Status) {
	if len(e.Markers) == 0 {
		a.ui.ok("No function carries a session marker (scanned %d)", e.Scanned)
		return
	}
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "FUNCTION\tSESSION\tBY\tSINCE\tTUNNELS\tVARIABLES")
	for _, m := range e.Markers {
		if m.Message != "" {
			fmt.Fprintf(w, "%s\t?\t?\t?\t%s\t%s\n", m.Function, tunnelsAlive(m), m.Message)
			continue
		}
		tunnels := tunnelsAlive(m)
		if len(m.Tunnels) > 0 {
			var addrs []string
			for _, t := range m.Tunnels {
				addrs = append(addrs, t.Public)
			}
			tunnels += " (" + strings.Join(addrs, ", ") + ")"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", m.Function, m.Session, m.By, m.Since, tunnels, strings.Join(m.Keys, ", "))
	}
	w.Flush()
	for _, line := range strings.Split(strings.TrimRight(b.String(), "\n"), "\n") {
		a.ui.plain("%s", strings.TrimRight(line, " "))
	}
	a.ui.info("%s held by a session (scanned %d)", plural(len(e.Markers), "function"), e.Scanned)
}

// summarizeOrWarn adds a step's fields to GitHub Actions' outputs and job summary; a failure to write them is a
// warning, never the end of a session.
func (a *app) summarizeOrWarn(d *doc.Document, fields ...string) {
	if d == nil {
		return
	}
	if err := a.summarize(d, fields...); err != nil {
		a.ui.warn("%v", err)
	}
}

// reportRestored closes a restore with what it did: functions put back, and those that needed nothing (none of
// the session's values left on them). Deleted functions were reported one by one.
func (a *app) reportRestored(restores []doc.Restore) {
	restored, notNeeded := 0, 0
	for _, r := range restores {
		switch r.State {
		case doc.RestoreRestored, doc.RestorePartial:
			restored++
		case doc.RestoreNotNeeded:
			notNeeded++
		}
	}
	switch {
	case restored > 0 && notNeeded > 0:
		a.ui.ok("Lambda env vars restored (%s; %s already as deployed)", plural(restored, "function"), plural(notNeeded, "other"))
	case restored > 0:
		a.ui.ok("Lambda env vars restored (%s)", plural(restored, "function"))
	case notNeeded > 0:
		a.ui.ok("Nothing to restore: %s already as deployed", plural(notNeeded, "function"))
	default:
		a.ui.ok("Nothing left to restore")
	}
}

// reportPatch renders a patch's progress. Values are never printed: only names.
func (a *app) reportPatch(e lambdaenv.Event) {
	switch e.Kind {
	case lambdaenv.EventPatched:
		a.ui.ok("Updating Lambda env vars: %s", e.Function)
	case lambdaenv.EventPlanned:
		a.ui.info("Would update Lambda env vars: %s (dry run, nothing written)", e.Function)
	case lambdaenv.EventUpToDate:
		a.ui.info("Lambda env vars already point at the tunnels: %s", e.Function)
	case lambdaenv.EventNothingToPatch:
		a.ui.warn("Skipping %s: nothing to change (%v)", e.Function, e.Err)
	case lambdaenv.EventSkipped:
		a.ui.warn("Skipping %s: %v", e.Function, e.Err)
	case lambdaenv.EventNoMarker:
		msg := fmt.Sprintf("%s is patched without its session marker (%s), which would not fit in Lambda's 4 KB: only this "+
			"machine's journal can restore it (`stptunnel env restore`), and other sessions will not see it is in use", e.Function, lambdaenv.MarkerKey)
		a.ui.warn("%s", msg)
		a.gh.warning(a.ui.redact(msg))
	}
}

// reportRestore renders a restore's progress. Only names are printed, never values.
func (a *app) reportRestore(e lambdaenv.Event) {
	switch e.Kind {
	case lambdaenv.EventKept:
		if e.Holder != nil {
			a.maskMarker(e.Holder)
			a.ui.warn("Keeping %s on %s: session %s of %s took the function over (since %s) and restores them when it ends",
				strings.Join(e.Keys, ", "), e.Function, e.Holder.ID, e.Holder.By, e.Holder.At)
			return
		}
		a.ui.warn("Keeping %s on %s: changed since the patch (a deploy?), so it is not ours to put back; --force restores it anyway",
			strings.Join(e.Keys, ", "), e.Function)
	case lambdaenv.EventUpToDate:
		if e.Holder != nil {
			a.maskMarker(e.Holder)
			a.ui.info("Leaving %s: session %s of %s holds it now", e.Function, e.Holder.ID, e.Holder.By)
		}
	case lambdaenv.EventGone:
		a.ui.warn("Skipping %s: the function no longer exists", e.Function)
	case lambdaenv.EventFailed:
		a.ui.warn("Could not restore %s: %v", e.Function, e.Err)
	}
}

// reportTunnelEvent tells the user what happened to a tunnel.
func (a *app) reportTunnelEvent(ev tunnel.Event) {
	switch ev.Kind {
	case tunnel.Retrying:
		a.ui.warn("Starting tunnel %s failed: bore server %s: %s; retrying in %s", ev.Resource, ev.Server, tunnel.Describe(ev.Err), ev.Delay)
	case tunnel.Switching:
		if tunnel.Cause(ev.Err) == tunnel.CauseAuth {
			a.ui.warn("Tunnel %s: bore server %s refused the secret (%v): not trying it again; moving to %s", ev.Resource, ev.Server, ev.Err, ev.Next)
		} else {
			a.ui.warn("Tunnel %s: bore server %s is unreachable (%s): moving to %s", ev.Resource, ev.Server, tunnel.Cause(ev.Err), ev.Next)
		}
	case tunnel.Down:
		a.ui.warn("Tunnel %s is down (%v): functions using it may lose connectivity; reconnecting", ev.Resource, ev.Err)
	case tunnel.Up:
		a.ui.ok("Tunnel %s reconnected → %s", ev.Resource, ev.Public)
	case tunnel.Moved:
		if ev.Server != ev.PreviousServer {
			a.ui.warn("Tunnel %s moved to bore server %s: %s → %s (run `stptunnel env patch` again for the functions using it)",
				ev.Resource, ev.Server, ev.Previous, ev.Public)
		} else {
			a.ui.warn("Tunnel %s reconnected on a new address: %s → %s (run `stptunnel env patch` again for the functions using it)",
				ev.Resource, ev.Previous, ev.Public)
		}
	case tunnel.Lost:
		a.ui.fail("Tunnel %s is lost: no bore server took it back: %v", ev.Resource, ev.Err)
	}
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

func verb(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
