package tunnel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/stptunnel/stptunnel/pkg/doc"
	"github.com/stptunnel/stptunnel/pkg/statedir"
)

// StateFile is the record of a detached session, in the state directory.
const StateFile = "tunnels.json"

// State is what StateFile records: the process holding the tunnels, and the tunnels.
type State struct {
	PID     int          `json:"pid"`
	Started time.Time    `json:"started"`
	Tunnels []doc.Tunnel `json:"tunnels"`
	// ProcStart identifies the holder beyond its pid where the platform tells a process's start (Linux: clock
	// ticks since boot), so that a pid reused by another program after an unclean end is never signalled.
	ProcStart uint64 `json:"procStart,omitempty"`
}

// ErrNoSession: no detached session is recorded in the state directory.
var ErrNoSession = errors.New("no detached tunnel session")

// ReadState reads the record of the detached session in dir; ErrNoSession when there is none.
func ReadState(dir string) (*State, error) {
	path := filepath.Join(dir, StateFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNoSession
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return &st, nil
}

// WriteState records st in dir, atomically and readable by its owner only; it creates dir (statedir.Ensure).
func WriteState(dir string, st State) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(dir, StateFile)
	if err := statedir.Ensure(dir); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := doc.WriteFileAtomic(path, append(b, '\n')); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// RemoveState removes the record in dir if it still names pid (any record when pid is 0).
func RemoveState(dir string, pid int) error {
	if pid != 0 {
		st, err := ReadState(dir)
		if err != nil || st.PID != pid {
			return nil
		}
	}
	err := os.Remove(filepath.Join(dir, StateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// Alive reports whether the process holding a detached session is running: the pid is live and, where the
// platform tells, it is still the process that wrote the record (not another program that got the pid since).
func (st *State) Alive() bool {
	if !processAlive(st.PID) {
		return false
	}
	return st.ProcStart == 0 || processStartTime(st.PID) == st.ProcStart
}

// Stop ends the detached session's process: SIGTERM, then SIGKILL once grace has passed (Windows: kill). It
// returns once the process is gone and removes the record.
//
// It returns the record as the process left it: with what its tunnels carried until the end.
func Stop(ctx context.Context, dir string, st *State, grace time.Duration) (*State, error) {
	if st.Alive() {
		if err := terminate(st.PID, false); err != nil {
			return nil, fmt.Errorf("stopping process %d: %w", st.PID, err)
		}
		if !waitGone(ctx, st.PID, grace) {
			if err := terminate(st.PID, true); err != nil {
				return nil, fmt.Errorf("killing process %d: %w", st.PID, err)
			}
			if !waitGone(ctx, st.PID, grace) {
				return nil, fmt.Errorf("process %d is still running after SIGKILL", st.PID)
			}
		}
	}
	final := st
	if last, err := ReadState(dir); err == nil && last.PID == st.PID {
		final = last
	}
	return final, RemoveState(dir, 0)
}

// waitGone polls until pid has exited: it is not our child, so there is nothing to wait on.
func waitGone(ctx context.Context, pid int, limit time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for processAlive(pid) {
		select {
		case <-ctx.Done():
			return !processAlive(pid)
		case <-tick.C:
		}
	}
	return true
}

// Probe reports whether a public address accepts connections. Through a bore server this opens (and at once
// closes) one connection to the local service.
func Probe(ctx context.Context, addr string, timeout time.Duration) error {
	return CheckLocal(ctx, addr, timeout)
}

// ProbeTunnel probes t at its public address and, under a tunnel host (a private address this machine usually
// cannot reach), also where this machine dials the server (DialedAddr): it is alive when either answers.
func ProbeTunnel(ctx context.Context, t doc.Tunnel, timeout time.Duration) error {
	err := Probe(ctx, t.Public, timeout)
	if dialed := DialedAddr(t); err != nil && dialed != t.Public {
		derr := Probe(ctx, dialed, timeout)
		if derr == nil {
			return nil
		}
		err = fmt.Errorf("%w; at %s: %w", err, dialed, derr)
	}
	return err
}

// handoff is what Detach sends the holder on its stdin.
type handoff struct {
	Specs []Spec `json:"specs"`
	// ReconnectWindow is Options.ReconnectWindow of the session that detached (0: the default).
	ReconnectWindow time.Duration `json:"reconnectWindow,omitempty"`
}

// ready is what the holder answers on its stdout once the tunnels are up, or why they are not.
type ready struct {
	Tunnels []doc.Tunnel `json:"tunnels,omitempty"`
	PID     int          `json:"pid,omitempty"`
	Started time.Time    `json:"started,omitzero"`
	Error   string       `json:"error,omitempty"`
}

// Detach starts cmd, a process running Hold (the same binary, through a hidden command), in a session of its
// own so it survives this one; it hands it specs and the reconnect window (Options.ReconnectWindow) on its
// stdin (so secrets never appear on a command line) and
// returns the session (its process and tunnels) once the holder reports every tunnel up and recorded. When it
// does not, the holder is gone and the error says why. cmd's Stderr is the caller's (a log file: the holder
// outlives every terminal).
func Detach(ctx context.Context, cmd *exec.Cmd, specs []Spec, reconnectWindow time.Duration) (*State, error) {
	detach(cmd)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the background process: %w", err)
	}
	abort := func(err error) (*State, error) {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, err
	}
	if err := json.NewEncoder(stdin).Encode(handoff{Specs: specs, ReconnectWindow: reconnectWindow}); err != nil {
		return abort(fmt.Errorf("handing the tunnels to the background process: %w", err))
	}
	stdin.Close()
	answer := make(chan ready, 1)
	go func() {
		var r ready
		if err := json.NewDecoder(stdout).Decode(&r); err != nil {
			r.Error = "the background process ended before the tunnels were up"
		}
		answer <- r
	}()
	select {
	case <-ctx.Done():
		return abort(ctx.Err())
	case r := <-answer:
		if r.Error != "" {
			cmd.Wait()
			return nil, errors.New(r.Error)
		}
		stdout.Close()
		cmd.Process.Release()
		return &State{PID: r.PID, Started: r.Started, Tunnels: r.Tunnels}, nil
	}
}

// Hold is the detached side of Detach: it reads the specs from in, opens the tunnels, records the session in
// dir, reports on out (then closes it), and holds the tunnels until ctx ends, the record is removed or taken
// over by another session, or a tunnel is lost (every server tried in vain: the error says why). report
// receives the tunnels' events, those of the start included; the record follows a tunnel that moves. The record
// is removed when Hold returns.
func Hold(ctx context.Context, in io.Reader, out io.WriteCloser, dir string, opts Options, report func(Event)) error {
	answer := func(r ready) error {
		defer out.Close()
		return json.NewEncoder(out).Encode(r)
	}
	var h handoff
	if err := json.NewDecoder(in).Decode(&h); err != nil {
		err = fmt.Errorf("reading the tunnels to hold: %w", err)
		answer(ready{Error: err.Error()})
		return err
	}
	if h.ReconnectWindow != 0 {
		opts.ReconnectWindow = h.ReconnectWindow
	}
	if report != nil {
		opts.Report = report
	}
	s, err := Open(ctx, h.Specs, opts)
	if err != nil {
		answer(ready{Error: err.Error()})
		return err
	}
	defer s.Close()
	pid := os.Getpid()
	st := State{PID: pid, Started: time.Now().UTC().Truncate(time.Second), Tunnels: s.Activity(), ProcStart: processStartTime(pid)}
	if err := WriteState(dir, st); err != nil {
		answer(ready{Error: err.Error()})
		return err
	}
	// The record goes with this process, except when a signal ends it (`tunnel close`): then it holds the final
	// activity, for the closer to read before it removes the record.
	keepRecord := false
	defer func() {
		if !keepRecord {
			RemoveState(dir, pid)
		}
	}()
	if err := answer(ready{Tunnels: s.Tunnels(), PID: pid, Started: st.Started}); err != nil {
		return fmt.Errorf("reporting to the parent: %w", err)
	}
	// ours reports whether the record still names this process: without it nobody can find this process to close
	// it, so it ends rather than linger (and never writes the record back).
	ours := func() bool {
		cur, err := ReadState(dir)
		return !errors.Is(err, ErrNoSession) && (err != nil || cur.PID == pid)
	}
	record := func() bool {
		if !ours() {
			return false
		}
		st.Tunnels = s.Activity()
		if err := WriteState(dir, st); err != nil && opts.Logger != nil {
			opts.Logger.Error("recording the tunnels", "err", err)
		}
		return true
	}
	watch := time.NewTicker(2 * time.Second)
	defer watch.Stop()
	// What the tunnels carry reaches the record at most once a second, and only when it changed.
	activity := time.NewTicker(time.Second)
	defer activity.Stop()
	recorded := s.Activity()
	for {
		select {
		case <-ctx.Done():
			keepRecord = record()
			return nil
		case ev := <-s.Events():
			if report != nil {
				report(ev)
			}
			switch ev.Kind {
			case Moved:
				if !record() {
					return nil
				}
			case Lost:
				return fmt.Errorf("tunnel %s is lost: %w", ev.Resource, ev.Err)
			}
		case <-activity.C:
			if now := s.Activity(); !sameActivity(now, recorded) {
				if !record() {
					return nil
				}
				recorded = now
			}
		case <-watch.C:
			if !ours() {
				return nil
			}
		}
	}
}

// sameActivity reports whether two views of the tunnels carry the same addresses and activity.
func sameActivity(a, b []doc.Tunnel) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.Public != y.Public || x.Server != y.Server || (x.Activity == nil) != (y.Activity == nil) ||
			(x.Activity != nil && *x.Activity != *y.Activity) {
			return false
		}
	}
	return true
}
