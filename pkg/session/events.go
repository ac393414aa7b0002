package session

import (
	"github.com/stptunnel/stptunnel/pkg/doc"
	"github.com/stptunnel/stptunnel/pkg/lambdaenv"
	"github.com/stptunnel/stptunnel/pkg/tunnel"
)

// Event is something a step reports while it works. The concrete types below are the whole set; the command line
// renders each in its own words. No event carries a variable's value: only names, addresses and reasons.
type Event interface{ event() }

// Bound: detect bound a function's variable to a resource, and what env patch will do to it.
type Bound struct {
	Function string
	Binding  doc.Binding
	Decision lambdaenv.Decision
}

// Warning: something the user should know that does not stop the step.
type Warning struct{ Message string }

// Skipped: a function will not be patched (detect, or the patch found why).
type Skipped struct{ Skip doc.Skip }

// Found: detect's result.
type Found struct{ Functions, Scanned int }

// NothingToDo: a step found nothing to act on; Message says what it looked at.
type NothingToDo struct{ Message string }

// PublicServer: the tunnels go through a public bore server, reachable by anyone who finds the port.
type PublicServer struct{ Server, Resources string }

// TunnelStarted: a tunnel is up.
type TunnelStarted struct{ Tunnel doc.Tunnel }

// TunnelsHeld: a detached process holds the tunnels.
type TunnelsHeld struct{ PID int }

// TunnelActivity: what each tunnel carried so far (reported once a second while a session holds).
type TunnelActivity struct{ Tunnels []doc.Tunnel }

func (TunnelActivity) event() {}

// TunnelChanged: a tunnel's start attempt failed and is retried, it left a server for the next, went down,
// came back, moved to another address or server, or was lost.
type TunnelChanged struct{ tunnel.Event }

// Updating: Patch is about to update these functions (Wait: each is reported once live).
type Updating struct {
	Functions []string
	Wait      bool
}

// PatchProgress: one function's step in a patch.
type PatchProgress struct{ lambdaenv.Event }

// Ready: every function that could be patched is, and follows its tunnel; Doc is the session's document.
type Ready struct {
	Patched, Tunnels int
	DryRun           bool
	Doc              *doc.Document
}

// Following: a tunnel moved to a new address (Public, on bore server Server; Previous on PreviousServer
// before); its functions are patched again to it (Done once they are).
type Following struct {
	Resource, Previous, Public string
	Server, PreviousServer     string
	Done                       bool
}

// Recovering: an earlier session left functions patched in the journal; they are restored first.
type Recovering struct{ Functions int }

// Restoring: the restore of these functions starts.
type Restoring struct{ Functions []string }

// RestoreProgress: one function's step in a restore.
type RestoreProgress struct{ lambdaenv.Event }

// Restored: the restore ended with every function put back (Restores, for the summary; Doc when it has one).
type Restored struct {
	Restores []doc.Restore
	Doc      *doc.Document
}

// LeftPatched: functions stay patched (the journal keeps them); Doc is the session's document.
type LeftPatched struct {
	Functions []string
	Err       error // why
	Doc       *doc.Document
}

// CleanupInterrupted: a signal arrived during cleanup: Abandoned when it was the second.
type CleanupInterrupted struct{ Abandoned bool }

// Stopping, Stopped: the tunnels are being closed, and are.
type Stopping struct{}
type Stopped struct{}

// CleanupComplete: dev's cleanup left nothing patched.
type CleanupComplete struct{}

// Signalled: a signal arrived while the session started or held; it ends the session.
type Signalled struct {
	Signal   string
	Starting bool // during start-up
}

// CommandOnly: --no-tunnel: only the command runs.
type CommandOnly struct{ Command string }

// Waiting: the session holds until a signal.
type Waiting struct{}

func (Bound) event()              {}
func (Warning) event()            {}
func (Skipped) event()            {}
func (Found) event()              {}
func (NothingToDo) event()        {}
func (PublicServer) event()       {}
func (TunnelStarted) event()      {}
func (TunnelsHeld) event()        {}
func (TunnelChanged) event()      {}
func (Updating) event()           {}
func (PatchProgress) event()      {}
func (Ready) event()              {}
func (Following) event()          {}
func (Recovering) event()         {}
func (Restoring) event()          {}
func (RestoreProgress) event()    {}
func (Restored) event()           {}
func (LeftPatched) event()        {}
func (CleanupInterrupted) event() {}
func (Stopping) event()           {}
func (Stopped) event()            {}
func (CleanupComplete) event()    {}
func (Signalled) event()          {}
func (CommandOnly) event()        {}
func (Waiting) event()            {}
