package services_test

import (
	"errors"
	"net"
	"testing"

	"github.com/stptunnel/stptunnel/internal/services"
)

// TestStartStop starts each server, checks it answers on its port, stops it and checks the port is closed.
func TestStartStop(t *testing.T) {
	for _, kind := range services.Kinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			s := services.StartT(t, kind, services.Options{})
			conn, err := net.Dial("tcp", s.Addr())
			if err != nil {
				t.Fatalf("%s started but its port refuses: %v", kind, err)
			}
			conn.Close()
			if err := s.Close(); err != nil {
				t.Fatalf("stopping: %v\n%s", err, s.Log())
			}
			if conn, err := net.Dial("tcp", s.Addr()); err == nil {
				conn.Close()
				t.Fatalf("%s still answers on %s after Close", kind, s.Addr())
			}
		})
	}
}

func TestSkipReason(t *testing.T) {
	missing := &services.NotInstalledError{Kind: "redis", Missing: "redis-server", Install: "apt-get install redis-server"}
	t.Setenv(services.RequireEnv, "")
	if services.SkipReason(missing) == "" {
		t.Error("a missing service is not a skip without " + services.RequireEnv)
	}
	if services.SkipReason(errors.New("initdb: exit status 1")) != "" {
		t.Error("a failing service is a skip; want a failure")
	}
	t.Setenv(services.RequireEnv, "1")
	if reason := services.SkipReason(missing); reason != "" {
		t.Errorf("under %s=1 a missing service is a skip (%q); want a failure", services.RequireEnv, reason)
	}
}

// TestInstalled checks Installed agrees with Start: a kind it calls installed starts (TestStartStop), a
// missing one is a *NotInstalledError, and an unknown kind is an error of its own.
func TestInstalled(t *testing.T) {
	for _, kind := range services.Kinds {
		err := services.Installed(kind)
		var missing *services.NotInstalledError
		if err != nil && !errors.As(err, &missing) {
			t.Errorf("Installed(%s) = %v, want nil or a *NotInstalledError", kind, err)
		}
	}
	err := services.Installed("oracle")
	var missing *services.NotInstalledError
	if err == nil || errors.As(err, &missing) {
		t.Errorf("Installed(oracle) = %v, want an unknown-service error", err)
	}
}
