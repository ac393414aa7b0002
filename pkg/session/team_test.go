package session

import (
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stptunnel/stptunnel/pkg/awssim"
	"github.com/stptunnel/stptunnel/pkg/detect"
	"github.com/stptunnel/stptunnel/pkg/doc"
	"github.com/stptunnel/stptunnel/pkg/lambdaenv"
)

// Two developers on one stage: each has its own machine (state dir, events) and tunnels, on one account.

// developer is a second session on f's emulator and bore server: another state dir, its own events.
func (f *fixture) developer(t *testing.T, who string) (*fixture, Env) {
	t.Helper()
	g := *f
	g.events = &recorder{}
	g.env.StateDir = t.TempDir()
	g.env.Report = g.events.report
	g.opts.Patch.By = who
	return &g, g.env
}

// inUse returns the InUse events recorded.
func (r *recorder) inUse() []InUse {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []InUse
	for _, e := range r.events {
		if iu, ok := e.(InUse); ok {
			out = append(out, iu)
		}
	}
	return out
}

// holding runs Dev in the background until release is closed; it returns once the session is ready, with the
// channel Dev's result arrives on.
func holding(t *testing.T, f *fixture, release <-chan struct{}) <-chan error {
	t.Helper()
	ready := make(chan struct{})
	f.opts.During = func(ctx context.Context, d *doc.Document) error {
		close(ready)
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	}
	done := make(chan error, 1)
	go func() { done <- Dev(t.Context(), doc.New(), f.opts, f.env) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("Dev ended before it was ready: %v (events %s)", err, f.events.kinds())
	case <-time.After(60 * time.Second):
		t.Fatalf("Dev never got ready (events %s)", f.events.kinds())
	}
	return done
}

func markerOf(t *testing.T, f *fixture, fn string) (lambdaenv.Marker, bool) {
	t.Helper()
	env, _ := f.sim.Env(fn)
	m, ok, err := lambdaenv.MarkerOf(env)
	if err != nil {
		t.Fatal(err)
	}
	return m, ok
}

func TestSecondDevSessionIsToldWhoHoldsTheFunction(t *testing.T) {
	ana := newFixture(t)
	ana.opts.Patch.By = "ana@laptop"
	bo, _ := ana.developer(t, "bo@desk")
	before, _ := ana.sim.Env("api")

	release := make(chan struct{})
	anaDone := holding(t, ana, release)
	held, _ := ana.sim.Env("api")
	m, ok := markerOf(t, ana, "api")
	if !ok || m.By != "ana@laptop" || len(m.Pub) != 1 {
		t.Fatalf("ana's marker = %+v, %v", m, ok)
	}

	// Bo's session finds api held by Ana's, whose tunnel answers: it patches nothing and says so.
	bo.opts.During = func(context.Context, *doc.Document) error { t.Error("bo's session got ready"); return nil }
	err := Dev(t.Context(), doc.New(), bo.opts, bo.env)
	if !errors.Is(err, ErrNothingPatched) {
		t.Fatalf("bo's Dev = %v, want ErrNothingPatched (events %s)", err, bo.events.kinds())
	}
	iu := bo.events.inUse()
	if len(iu) != 1 || iu[0].Function != "api" || !iu[0].Alive || iu[0].Holder == nil || iu[0].Holder.ID != m.ID {
		t.Fatalf("InUse = %+v", iu)
	}
	for _, want := range []string{"ana@laptop", m.ID, m.At, "its tunnels answer (" + m.Pub[0] + ")",
		"`stptunnel env restore --function api`", "--take-over"} {
		if !strings.Contains(iu[0].Message, want) {
			t.Fatalf("in-use message %q lacks %q", iu[0].Message, want)
		}
	}
	if strings.Contains(iu[0].Message, "cl0ud") {
		t.Fatal("the in-use message carries a value")
	}
	if now, _ := ana.sim.Env("api"); !maps.Equal(now, held) {
		t.Fatalf("bo's session wrote api: %v", now)
	}

	// Ana ends: api is back; bo's journal never held it.
	close(release)
	if err := <-anaDone; err != nil {
		t.Fatalf("ana's Dev = %v", err)
	}
	if after, _ := ana.sim.Env("api"); !maps.Equal(after, before) {
		t.Fatalf("after ana's session api = %v", after)
	}
}

// --take-over: both sessions share api; whichever ends first, once both have, api holds its deployed values.
func TestTakeOverThenEitherSessionEndsFirst(t *testing.T) {
	for _, order := range []string{"taker-ends-first", "first-ends-first"} {
		t.Run(order, func(t *testing.T) {
			ana := newFixture(t)
			ana.opts.Patch.By = "ana@laptop"
			bo, _ := ana.developer(t, "bo@desk")
			before, _ := ana.sim.Env("api")
			releaseAna, releaseBo := make(chan struct{}), make(chan struct{})
			anaDone := holding(t, ana, releaseAna)
			anaMarker, _ := markerOf(t, ana, "api")

			bo.opts.Patch.TakeOver = true
			boDone := holding(t, bo, releaseBo)
			m, _ := markerOf(t, bo, "api")
			if m.ID == anaMarker.ID || m.By != "bo@desk" {
				t.Fatalf("after the take-over the marker is %+v", m)
			}
			if b, _ := m.Keys["STP_POSTGRES_DB_CONNECTION_STRING"].Before(); b != deployed {
				t.Fatalf("bo's marker b = %q; want the deployed value, not ana's", b)
			}
			if len(bo.events.inUse()) != 0 {
				t.Fatal("--take-over still reported in-use")
			}

			first, second := releaseBo, releaseAna
			firstDone, secondDone := boDone, anaDone
			if order == "first-ends-first" {
				first, second, firstDone, secondDone = releaseAna, releaseBo, anaDone, boDone
			}
			close(first)
			if err := <-firstDone; err != nil {
				t.Fatalf("first to end: %v", err)
			}
			if order == "first-ends-first" {
				// Bo holds api now: Ana's session left it to him, and it still points at his tunnel.
				if m, ok := markerOf(t, ana, "api"); !ok || m.By != "bo@desk" {
					t.Fatal("ana's restore removed bo's marker")
				}
			}
			close(second)
			if err := <-secondDone; err != nil {
				t.Fatalf("second to end: %v", err)
			}
			if after, _ := ana.sim.Env("api"); !maps.Equal(after, before) {
				t.Fatalf("after both sessions api = %v\nwant %v", after, before)
			}
		})
	}
}

// The machine that patched is gone with its journal: env restore --stack on another machine puts every function
// back from its marker, byte for byte; env status says who held what before, during and after.
func TestRestoreFromAnywhereAndStatus(t *testing.T) {
	ana := newFixture(t)
	ana.opts.Patch.By = "ana@laptop"
	ana.sim.PutFunction(awssim.Function{Name: "jobs", Env: map[string]string{"STP_POSTGRES_DB_CONNECTION_STRING": deployed, "QUEUE": "jobs"}})
	ana.sim.PutStack("shop", awssim.Stack{Resources: []awssim.StackResource{
		{LogicalID: "Api", PhysicalID: "api", Type: "AWS::Lambda::Function"},
		{LogicalID: "Jobs", PhysicalID: "jobs", Type: "AWS::Lambda::Function"},
		{LogicalID: "Other", PhysicalID: "other", Type: "AWS::Lambda::Function"}}})
	before := map[string]map[string]string{}
	for _, fn := range []string{"api", "jobs", "other"} {
		before[fn], _ = ana.sim.Env(fn)
	}
	ops, env := ana.developer(t, "ops@ci")

	status := func() []doc.Marked {
		t.Helper()
		d := doc.New()
		if err := EnvStatus(t.Context(), d, StatusOptions{Scope: detect.Scope{Stack: "shop"}}, env); err != nil {
			t.Fatal(err)
		}
		markers, err := d.Markers()
		if err != nil {
			t.Fatal(err)
		}
		return markers
	}
	if m := status(); len(m) != 0 {
		t.Fatalf("before any session: %+v", m)
	}

	release := make(chan struct{})
	ana.opts.Detect.Scope = detect.Scope{Stack: "shop"}
	anaDone := holding(t, ana, release)
	during := status()
	if len(during) != 2 || during[0].Function != "api" || during[1].Function != "jobs" {
		t.Fatalf("during: %+v", during)
	}
	for _, m := range during {
		if m.By != "ana@laptop" || !m.Alive || len(m.Tunnels) != 1 || !m.Tunnels[0].Alive ||
			!slices.Equal(m.Keys, []string{"STP_POSTGRES_DB_CONNECTION_STRING"}) || m.Session == "" || m.Since == "" {
			t.Fatalf("during: %+v", m)
		}
	}

	close(release)
	if err := <-anaDone; err != nil {
		t.Fatal(err)
	}
	if m := status(); len(m) != 0 {
		t.Fatalf("after ana's session: %+v", m)
	}

	// Ana's machine dies during her next session: the functions stay patched, her tunnels and journal are gone.
	d := doc.New()
	if err := Detect(t.Context(), d, ana.opts.Detect, ana.env); err != nil {
		t.Fatal(err)
	}
	specs, err := TunnelSpecs(d, ana.opts.Tunnel)
	if err != nil {
		t.Fatal(err)
	}
	tunnels, err := OpenTunnels(t.Context(), d, specs, ana.opts.Tunnel, ana.env)
	if err != nil {
		t.Fatal(err)
	}
	if err := Patch(t.Context(), d, ana.opts.Patch, ana.env); err != nil {
		t.Fatal(err)
	}
	tunnels.Close()
	if err := os.Remove(filepath.Join(ana.env.StateDir, lambdaenv.JournalFile)); err != nil {
		t.Fatal(err)
	}
	dead := status()
	if len(dead) != 2 || dead[0].Alive || dead[0].Tunnels[0].Alive {
		t.Fatalf("after the machine died: %+v", dead)
	}

	// From another machine, with neither document nor journal: --session of another session touches nothing...
	if err := Restore(t.Context(), doc.New(), RestoreOptions{Scope: detect.Scope{Stack: "shop"}, Session: "000000000000"}, env); err != nil {
		t.Fatal(err)
	}
	if len(status()) != 2 {
		t.Fatal("--session of another session restored")
	}
	// ...and the stack's restore puts every function back, byte for byte.
	out := doc.New()
	if err := Restore(t.Context(), out, RestoreOptions{Scope: detect.Scope{Stack: "shop"}}, env); err != nil {
		t.Fatal(err)
	}
	for fn, want := range before {
		if got, _ := ana.sim.Env(fn); !maps.Equal(got, want) {
			t.Fatalf("%s after the restore from its marker = %v\nwant %v", fn, got, want)
		}
	}
	restores, _ := out.Restores()
	if len(restores) != 2 || restores[0].State != doc.RestoreRestored || restores[1].State != doc.RestoreRestored {
		t.Fatalf("restores = %+v", restores)
	}
	if !strings.Contains(ops.events.kinds(), "FromMarkers") {
		t.Fatalf("events: %s", ops.events.kinds())
	}
	if m := status(); len(m) != 0 {
		t.Fatalf("after the restore: %+v", m)
	}
	if ana.sim.Updates("other") != 0 {
		t.Fatal("the unrelated function was written")
	}
}

func TestNewSession(t *testing.T) {
	a, b := NewSession("", time.Date(2026, 3, 1, 10, 0, 0, 0, time.FixedZone("CET", 3600))), NewSession("x@y", time.Now())
	if !regexp.MustCompile(`^[0-9a-f]{12}$`).MatchString(a.ID) || a.ID == b.ID {
		t.Fatalf("ids %q, %q", a.ID, b.ID)
	}
	if a.Started != "2026-03-01T09:00:00Z" || !strings.Contains(a.By, "@") || b.By != "x@y" {
		t.Fatalf("session %+v", a)
	}
}
