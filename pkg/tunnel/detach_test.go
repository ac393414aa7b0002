package tunnel

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/stptunnel/stptunnel/pkg/connstr"
	"github.com/stptunnel/stptunnel/pkg/doc"
)

func mustHostPort(t *testing.T, s string) connstr.HostPort {
	t.Helper()
	hp, err := connstr.ParseHostPort(s)
	if err != nil {
		t.Fatal(err)
	}
	return hp
}

func TestState(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	if _, err := ReadState(dir); !errors.Is(err, ErrNoSession) {
		t.Fatalf("ReadState of nothing = %v, want ErrNoSession", err)
	}
	st := State{PID: 4242, Started: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		Tunnels: []doc.Tunnel{{Resource: "db", Local: "localhost:5432", Public: "bore.pub:1", Server: "bore.pub", Engine: "native"}}}
	if err := WriteState(dir, st); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, StateFile))
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	got, err := ReadState(dir)
	if err != nil || got.PID != 4242 || len(got.Tunnels) != 1 || got.Tunnels[0] != st.Tunnels[0] || !got.Started.Equal(st.Started) {
		t.Fatalf("ReadState = %+v, %v", got, err)
	}
	if got.Alive() {
		t.Error("pid 4242 reported alive") // not impossible, but then the test machine is odd
	}
	RemoveState(dir, 1) // another session's pid: kept
	if _, err := ReadState(dir); err != nil {
		t.Errorf("the record of another pid was removed: %v", err)
	}
	if _, err := Stop(context.Background(), dir, got, time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadState(dir); !errors.Is(err, ErrNoSession) {
		t.Errorf("Stop left the record: %v", err)
	}
}

func TestHold(t *testing.T) {
	srv := startServer(t, "")
	dir := t.TempDir()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	held := make(chan error, 1)
	go func() { held <- Hold(ctx, inR, outW, dir, fast, nil) }()
	go json.NewEncoder(inW).Encode(handoff{Specs: []Spec{spec("db", echoService(t), srv.addr(), "", "")}})
	var r ready
	if err := json.NewDecoder(outR).Decode(&r); err != nil {
		t.Fatal(err)
	}
	if r.Error != "" || len(r.Tunnels) != 1 || r.PID != os.Getpid() {
		t.Fatalf("ready = %+v", r)
	}
	st, err := ReadState(dir)
	if err != nil || st.PID != os.Getpid() || st.Tunnels[0].Public != r.Tunnels[0].Public || st.Tunnels[0].Activity == nil || !st.Alive() {
		t.Fatalf("state = %+v, %v", st, err)
	}
	roundTrip(t, r.Tunnels[0].Public)
	// What the tunnel carries reaches the record within a second or so.
	eventually(t, "the activity recorded", func() bool {
		st, err := ReadState(dir)
		return err == nil && st.Tunnels[0].Activity != nil && st.Tunnels[0].Activity.Total == 1
	})
	cancel()
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	// Ended by a signal (`tunnel close`), it leaves its record with the final activity for the closer to read.
	final, err := ReadState(dir)
	if err != nil || final.Tunnels[0].Activity == nil || final.Tunnels[0].Activity.Total != 1 || final.Tunnels[0].Activity.BytesIn == 0 {
		t.Fatalf("final record = %+v, %v; want the activity of one connection", final, err)
	}
}

func TestHoldEndsWhenItsRecordIsRemoved(t *testing.T) {
	srv := startServer(t, "")
	dir := t.TempDir()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	held := make(chan error, 1)
	go func() { held <- Hold(context.Background(), inR, outW, dir, fast, nil) }()
	go json.NewEncoder(inW).Encode(handoff{Specs: []Spec{spec("db", echoService(t), srv.addr(), "", "")}})
	var r ready
	if err := json.NewDecoder(outR).Decode(&r); err != nil || r.Error != "" {
		t.Fatalf("ready = %+v, %v", r, err)
	}
	if err := RemoveState(dir, 0); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-held:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Hold still runs 10s after its record was removed")
	}
	eventually(t, "the tunnel is closed", func() bool { return srv.srv.Stats().TunnelsOpen == 0 })
}

func TestHoldReportsFailure(t *testing.T) {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	held := make(chan error, 1)
	go func() { held <- Hold(context.Background(), inR, outW, t.TempDir(), fast, nil) }()
	go json.NewEncoder(inW).Encode(handoff{Specs: []Spec{spec("db", closedPort(t), "127.0.0.1:1", "", "")}})
	var r ready
	if err := json.NewDecoder(outR).Decode(&r); err != nil {
		t.Fatal(err)
	}
	if r.Error == "" || len(r.Tunnels) != 0 {
		t.Fatalf("ready = %+v, want an error", r)
	}
	var le *LocalError
	if err := <-held; !errors.As(err, &le) {
		t.Errorf("Hold = %v, want a *LocalError", err)
	}
}
