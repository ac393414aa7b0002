package echotest

import (
	"io"
	"net"
	"testing"
)

func TestEchoesUntilStopped(t *testing.T) {
	ln, stop := Start(t)
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("ping"))
	c.(*net.TCPConn).CloseWrite()
	got, err := io.ReadAll(c) // the service half-closes once we did
	if err != nil || string(got) != "ping" {
		t.Fatalf("echo = %q, %v", got, err)
	}
	open, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	stop() // closes the open connection too
	if _, err := open.Read(make([]byte, 1)); err == nil {
		t.Fatal("a connection outlived stop")
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Fatal("the service still accepts after stop")
	}
}
