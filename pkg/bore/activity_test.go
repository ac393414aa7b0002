package bore

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"
)

// TestActivityCountsWhatTheTunnelCarries: exact byte counts in both directions while the connection is open and
// after it, the connections open and in all, and when the latest one came.
func TestActivityCountsWhatTheTunnelCarries(t *testing.T) {
	s := startServer(t, ServerConfig{})
	c := startClient(t, clientConfig(t, s, startEcho(t), ""))
	if a := c.Activity(); a != (Activity{}) {
		t.Fatalf("activity before any visitor = %+v, want none", a)
	}
	before := time.Now()
	conn := dial(t, publicLoopback(c))
	payload := bytes.Repeat([]byte("0123456789"), 100_000) // 1 MB: bulk, through splice on Linux
	go conn.Write(payload)
	got := make([]byte, len(payload))
	if _, err := io.ReadFull(conn, got); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the bytes counted while the connection is open", func() bool {
		a := c.Activity()
		return a.BytesIn == int64(len(payload)) && a.BytesOut == int64(len(payload)) && a.Open == 1 && a.Total == 1
	})
	if last := c.Activity().Last; last.Before(before) || last.After(time.Now()) {
		t.Fatalf("Last = %v, want the connection's time", last)
	}
	conn.Write([]byte("ping"))
	io.ReadFull(conn, got[:4])
	conn.Close()
	eventually(t, "the connection counted closed", func() bool {
		a := c.Activity()
		return a.Open == 0 && a.Total == 1 && a.BytesIn == int64(len(payload))+4 && a.BytesOut == int64(len(payload))+4
	})
}

// TestActivityCountsARefusedLocalService: a visitor whose local service is down is counted, with why.
func TestActivityCountsARefusedLocalService(t *testing.T) {
	s := startServer(t, ServerConfig{})
	ln := listenLocal(t)
	port := portOf(ln.Addr())
	ln.Close() // nothing listens there now
	c := startClient(t, clientConfig(t, s, port, ""))
	conn := dial(t, publicLoopback(c))
	defer conn.Close()
	eventually(t, "the refused local dial counted", func() bool { return c.Activity().LocalErrors == 1 })
	a := c.Activity()
	if !strings.Contains(a.LastLocalError, "refused") || a.Total != 0 || a.Open != 0 {
		t.Fatalf("activity = %+v, want one local error (refused) and no connection", a)
	}
}

func TestActivityAdd(t *testing.T) {
	t1, t2 := time.Unix(100, 0), time.Unix(200, 0)
	a := Activity{Open: 1, Total: 2, BytesIn: 3, BytesOut: 4, Last: t2, LocalErrors: 1, LastLocalError: "old"}
	b := Activity{Open: 0, Total: 5, BytesIn: 6, BytesOut: 7, Last: t1, LocalErrors: 2, LastLocalError: "new"}
	want := Activity{Open: 1, Total: 7, BytesIn: 9, BytesOut: 11, Last: t2, LocalErrors: 3, LastLocalError: "new"}
	if got := a.Add(b); got != want {
		t.Fatalf("Add = %+v, want %+v", got, want)
	}
}
