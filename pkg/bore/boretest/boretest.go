// Package boretest starts pkg/bore servers for the tests of other packages: one on loopback (or the address the
// config names), on a random control port, closed when the test ends.
package boretest

import (
	"testing"

	"github.com/stptunnel/stptunnel/pkg/bore"
)

// Start starts a bore server for t. An empty BindAddr means 127.0.0.1, and ControlPort 0 a free port.
func Start(t testing.TB, cfg bore.ServerConfig) *bore.Server {
	t.Helper()
	if cfg.BindAddr == "" {
		cfg.BindAddr = "127.0.0.1"
	}
	s, err := bore.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
