package cli

import (
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stptunnel/stptunnel/pkg/awssim"
	"github.com/stptunnel/stptunnel/pkg/bore"
	"github.com/stptunnel/stptunnel/pkg/bore/boretest"
)

// TestDevKilledAtRandomIsRestored runs `stptunnel dev` sessions against the emulator and an embedded bore server
// and kills each one (SIGKILL) at a moment drawn from a seeded RNG: during detect, while the tunnel opens, between
// the journal write and the update, while an update is in progress, during the restore after SIGTERM, or after a
// random delay. It then recovers, in turn, with `stptunnel env restore`, with a new `stptunnel dev -- true`, or from
// another machine: the journal deleted, `stptunnel env restore --function ...` from a fresh state dir restores
// from the functions' session markers (written in the same update as the patch, so a function holding the
// session's values always carries its marker). Every function's variables must then be byte-identical to the
// seed (no marker left), and the journal gone.
//
// STPTUNNEL_CRASH_TRIALS sets the number of trials (default 20); STPTUNNEL_CRASH_SEED replays a run.
func TestDevKilledAtRandomIsRestored(t *testing.T) {
	if testing.Short() {
		t.Skip("kills real processes: not in -short")
	}
	trials := 20
	if v := os.Getenv("STPTUNNEL_CRASH_TRIALS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("STPTUNNEL_CRASH_TRIALS=%q: want a positive number", v)
		}
		trials = n
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("STPTUNNEL_CRASH_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("STPTUNNEL_CRASH_SEED=%q: %v", v, err)
		}
		seed = n
	}
	t.Logf("seed %d (replay with STPTUNNEL_CRASH_SEED=%d), %d trials", seed, seed, trials)
	rng := rand.New(rand.NewPCG(seed, 0))

	boreSrv := boretest.Start(t, bore.ServerConfig{})
	proxy := startHoldProxy(t, boreSrv.Addr().String())
	dbPort, _ := startTestDatabase(t, 0)
	env := crashSeedEnv(dbPort)

	points := map[string]int{}
	killedWithJournal, fromMarkers := 0, 0
	recoveries := []string{"env restore", "dev", "marker"}
	for i := range trials {
		point := crashPoints[rng.IntN(len(crashPoints))]
		recovery := recoveries[i%len(recoveries)]
		k := 1 + rng.IntN(3)                                      // which call of the held operation
		delay := time.Duration(rng.IntN(2500)) * time.Millisecond // for the random points
		ok := t.Run(fmt.Sprintf("%02d-%s-%d-then-%s", i, point, k, recovery), func(t *testing.T) {
			journal, marked := crashTrial(t, crashTrialSpec{point: point, k: k, delay: delay, recovery: recovery,
				env: env, dbPort: dbPort, proxy: proxy})
			points[point]++
			if journal {
				killedWithJournal++
			}
			if marked {
				fromMarkers++
			}
		})
		if !ok {
			t.Fatalf("trial %d failed: replay with STPTUNNEL_CRASH_SEED=%d STPTUNNEL_CRASH_TRIALS=%d", i, seed, trials)
		}
	}
	t.Logf("%d trials, 0 losses; kills by point: %v; %d kills left a journal to recover; %d recoveries restored functions from their markers alone",
		trials, points, killedWithJournal, fromMarkers)
}

// The moments a trial may kill the session at.
var crashPoints = []string{
	"detect",              // ListFunctions held
	"tunnel-open",         // the bore server's control connection held by the proxy
	"journal-then-update", // the k-th UpdateFunctionConfiguration held: journalled pending, not written
	"mid-update",          // the poll (GetFunction) after the k-th update held: written, journal may still say pending
	"restore",             // after SIGTERM, the k-th update of the restore held
	"random",              // after a random delay from the start, wherever the session is
	"restore-random",      // after SIGTERM, a random delay into the cleanup
}

type crashTrialSpec struct {
	point, recovery string
	k               int
	delay           time.Duration
	env             map[string]map[string]string
	dbPort          int
	proxy           *holdProxy
}

// crashSeedEnv is the functions' variables before any session: three bound by convention, one unrelated, with
// bytes a careless writer would change (HTML characters, unicode, spaces, an empty value).
func crashSeedEnv(dbPort int) map[string]map[string]string {
	url := fmt.Sprintf("postgres://app:pw%%2Fx@localhost:%d/app?sslmode=disable", dbPort)
	return map[string]map[string]string{
		"api":     {"STP_POSTGRES_DB_CONNECTION_STRING": url, "OTHER": "kept <as> is & \"quoted\"", "EMPTY": ""},
		"worker":  {"STP_POSTGRES_DB_CONNECTION_STRING": url, "LABEL": "ünïcödé ✓ spaced  out"},
		"reports": {"STP_POSTGRES_DB_CONNECTION_STRING": fmt.Sprintf("host=127.0.0.1 port=%d dbname=app", dbPort)},
		"other":   {"QUEUE": "jobs"},
	}
}

// crashTrial runs one killed session and its recovery. It reports whether the kill left a journal, and whether the
// recovery restored functions from their markers.
func crashTrial(t *testing.T, spec crashTrialSpec) (journalLeft, fromMarkers bool) {
	ks := &killSwitch{held: make(chan struct{})}
	sim, err := awssim.New(awssim.Options{Region: "eu-west-1", Logger: slog.New(&callWatcher{onCall: ks.onCall})})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	ks.sim = sim
	for name, env := range spec.env {
		sim.PutFunction(awssim.Function{Name: name, Env: env})
	}
	state := t.TempDir()
	local := fmt.Sprintf("postgresDb=postgres://app:pw@localhost:%d/app", spec.dbPort)
	devArgs := []string{"dev", "--local", local, "--to", spec.proxy.addr(), "--state-dir", state}

	switch spec.point {
	case "detect":
		ks.holdCall("ListFunctions", 1)
	case "journal-then-update":
		ks.holdCall("UpdateFunctionConfiguration", spec.k)
	case "mid-update":
		ks.holdAfter("UpdateFunctionConfiguration", spec.k, "GetFunction")
	case "tunnel-open":
		spec.proxy.setHold(true)
		defer spec.proxy.setHold(false)
	}
	acceptedBefore := spec.proxy.acceptedCount()

	dev := stptunnelCmd(t, sim, "", devArgs...)
	stdout, stderr := newWatchBuffer(), newWatchBuffer()
	dev.Stdout, dev.Stderr = stdout, stderr
	start := time.Now()
	if err := dev.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = dev.Wait(); close(exited) }()
	defer func() { _ = dev.Process.Kill(); <-exited }()

	reached := false
	switch spec.point {
	case "detect", "journal-then-update", "mid-update":
		select {
		case <-ks.held:
			reached = true
		case <-exited:
		case <-time.After(reliabilityWait):
		}
	case "tunnel-open":
		reached = spec.proxy.waitAccepted(acceptedBefore, exited)
	case "random":
		select {
		case <-time.After(spec.delay):
			reached = true
		case <-exited:
		}
	case "restore", "restore-random":
		if !stdout.waitFor(`"patches"`, exited) {
			break
		}
		updates := sim.Calls("UpdateFunctionConfiguration")
		if spec.point == "restore" {
			ks.holdCall("UpdateFunctionConfiguration", updates+spec.k)
		}
		if err := dev.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if spec.point == "restore" {
			select {
			case <-ks.held:
				reached = true
			case <-exited:
			case <-time.After(reliabilityWait):
			}
		} else {
			select {
			case <-time.After(spec.delay / 5):
				reached = true
			case <-exited:
			}
		}
	}
	if !reached {
		select {
		case <-exited:
			// The session ended by itself before the kill point (e.g. fewer calls than k): still a valid trial
			// of the recovery, which must then find nothing left to do.
			t.Logf("dev ended before the kill point (%v)", waitErr)
		default:
			t.Fatalf("dev never reached %s:\nstderr:\n%s", spec.point, stderr.String())
		}
	}
	_ = dev.Process.Kill()
	<-exited
	ks.disarm()
	spec.proxy.setHold(false)
	t.Logf("killed after %v at %s; updates so far %d", time.Since(start).Round(time.Millisecond), spec.point,
		sim.Calls("UpdateFunctionConfiguration"))
	_, statErr := os.Stat(filepath.Join(state, "journal.json"))
	journalLeft = statErr == nil

	var recover *exec.Cmd
	switch spec.recovery {
	case "dev":
		recover = stptunnelCmd(t, sim, "", append(devArgs, "--", "true")...)
	case "marker":
		// The machine is gone: its journal with it. Another one restores from the markers.
		if err := os.Remove(filepath.Join(state, "journal.json")); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		args := []string{"env", "restore", "--state-dir", t.TempDir()}
		for _, name := range slices.Sorted(maps.Keys(spec.env)) {
			args = append(args, "--function", name)
		}
		recover = stptunnelCmd(t, sim, "", args...)
	default:
		recover = stptunnelCmd(t, sim, "", "env", "restore", "--state-dir", state)
	}
	out, err := recover.CombinedOutput()
	if err != nil {
		t.Fatalf("%s after the kill: %v\n%s\nkilled session's stderr:\n%s", spec.recovery, err, out, stderr.String())
	}
	for name, want := range spec.env {
		got, ok := sim.Env(name)
		if !ok {
			t.Fatalf("function %s is gone", name)
		}
		if g, w := string(awssim.CompactJSON(got)), string(awssim.CompactJSON(want)); g != w {
			t.Fatalf("%s after %s:\n got %s\nwant %s\n%s output:\n%s\nkilled session's stderr:\n%s",
				name, spec.recovery, g, w, spec.recovery, out, stderr.String())
		}
	}
	if _, err := os.Stat(filepath.Join(state, "journal.json")); !os.IsNotExist(err) {
		t.Fatalf("journal left after %s (%v):\n%s", spec.recovery, err, out)
	}
	if sim.Updates("other") != 0 {
		t.Fatalf("the unrelated function was written %d times", sim.Updates("other"))
	}
	return journalLeft, strings.Contains(string(out), "Restoring from their session markers")
}

// killSwitch holds one emulator request so that the test knows where the process is when it kills it. The
// emulator's per-request log line (callWatcher) arrives once a call is counted, so the hold is armed one call
// ahead: the call after the trigger is held.
type killSwitch struct {
	sim  *awssim.Server
	held chan struct{}
	once sync.Once

	mu        sync.Mutex
	off       bool
	holdOp    string
	armed     bool
	base      int    // calls of holdOp seen when the hold was armed
	triggerOp string // arm once triggerOp has had triggerN calls
	triggerN  int
}

// holdCall holds the nth call of op (counted from the emulator's start) and every later one.
func (k *killSwitch) holdCall(op string, nth int) {
	if nth <= 1 || nth-1 <= k.sim.Calls(op) {
		k.mu.Lock()
		k.holdOp = op
		k.mu.Unlock()
		k.arm(op, k.sim.Calls(op))
		return
	}
	k.holdAfter(op, nth-1, op)
}

// holdAfter holds the calls of op that follow the nth call of trigger.
func (k *killSwitch) holdAfter(trigger string, nth int, op string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.holdOp, k.triggerOp, k.triggerN = op, trigger, nth
}

func (k *killSwitch) arm(op string, base int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.off {
		return
	}
	k.armed, k.base = true, base
	k.sim.SetFault(op, awssim.Fault{Latency: time.Hour})
}

func (k *killSwitch) onCall(op string, n int) {
	k.mu.Lock()
	trigger := !k.off && !k.armed && op == k.triggerOp && n == k.triggerN
	holdOp, base := k.holdOp, k.sim.Calls(k.holdOp)
	heldNow := k.armed && !k.off && op == k.holdOp && n > k.base
	k.mu.Unlock()
	if trigger {
		if op == holdOp {
			base = n
		}
		k.arm(holdOp, base)
	}
	if heldNow {
		k.once.Do(func() { close(k.held) })
	}
}

// disarm lets every later request through (the held one stays held until its client is gone).
func (k *killSwitch) disarm() {
	k.mu.Lock()
	k.off = true
	op := k.holdOp
	k.mu.Unlock()
	if op != "" {
		k.sim.SetFault(op, awssim.Fault{})
	}
}
