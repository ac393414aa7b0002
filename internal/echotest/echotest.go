// Package echotest runs echo services on loopback for tests: the stand-in "database" behind a tunnel. Each
// connection gets back what it sends; when it stops sending, its write side is closed too.
package echotest

import (
	"io"
	"net"
	"sync"
	"testing"
)

// Serve echoes every connection ln accepts until stop is called or the test ends. stop closes ln and every open
// connection (the "database" goes down) and waits until nothing it started runs; calling it again does nothing.
func Serve(t testing.TB, ln net.Listener) (stop func()) {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				io.Copy(c, c)
				if tc, ok := c.(*net.TCPConn); ok {
					tc.CloseWrite()
				}
			})
		}
	})
	var once sync.Once
	stop = func() {
		once.Do(func() {
			ln.Close()
			mu.Lock()
			for _, c := range conns {
				c.Close()
			}
			mu.Unlock()
			wg.Wait()
		})
	}
	t.Cleanup(stop)
	return stop
}

// Start serves an echo service on a free loopback port and returns its listener (its address) and stop.
func Start(t testing.TB) (net.Listener, func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln, Serve(t, ln)
}
