package bore

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Hostile peers against the server: malformed and over-long frames, slow handshakes, wrong secrets, floods of
// control connections and of visitors nobody accepts. Throughout, the server stays up, its goroutines and memory
// stay bounded, and an honest client's tunnel keeps carrying bytes.

const hostileSecret = "hostile-test-secret"

// hostileBound is the generous bound on "the server noticed": many times the configured timeouts.
const hostileBound = 20 * time.Second

type hostileRig struct {
	t      *testing.T
	srv    *Server
	public string // the honest client's public address
}

func newHostileRig(t *testing.T, cfg ServerConfig) *hostileRig {
	cfg.Secret = hostileSecret
	cfg.HandshakeTimeout = 300 * time.Millisecond
	cfg.PendingExpiry = 500 * time.Millisecond
	cfg.Logger = slog.New(slog.DiscardHandler)
	srv := startServer(t, cfg)
	c := startClient(t, clientConfig(t, srv, startEcho(t), hostileSecret))
	return &hostileRig{t: t, srv: srv, public: publicLoopback(c)}
}

// honest checks that the honest client's tunnel carries bytes both ways.
func (r *hostileRig) honest(when string) {
	r.t.Helper()
	c, err := net.DialTimeout("tcp", r.public, 5*time.Second)
	if err != nil {
		r.t.Fatalf("%s: honest visitor: %v", when, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(hostileBound))
	msg := []byte("honest bytes " + when)
	if _, err := c.Write(msg); err != nil {
		r.t.Fatalf("%s: honest visitor: %v", when, err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
		r.t.Fatalf("%s: honest visitor got %q, %v", when, got, err)
	}
}

// dialFrom opens a control connection from another loopback address, as a hostile host would: per-address caps
// must not hit the honest client (127.0.0.1).
func dialFrom(t *testing.T, srv *Server, from string) *net.TCPConn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := d.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatalf("dialing from %s: %v", from, err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// closedByServer reads until the server closes c, and fails past hostileBound.
func closedByServer(t *testing.T, c net.Conn, what string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(hostileBound))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("%s: the server kept the connection open for %v", what, hostileBound)
	}
}

// settledGoroutines waits until the goroutine count is at most limit, and returns it.
func settledGoroutines(t *testing.T, limit int, what string) int {
	t.Helper()
	deadline := time.Now().Add(hostileBound)
	for {
		n := runtime.NumGoroutine()
		if n <= limit {
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d goroutines after %v, want at most %d", what, n, hostileBound, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// hostileAuth answers the server's challenge on a new connection from a hostile host, and returns its reader.
func hostileAuth(t *testing.T, c *net.TCPConn) *frameReader {
	t.Helper()
	r := newFrameReader(c)
	c.SetReadDeadline(time.Now().Add(hostileBound))
	m, err := r.readMessage(serverKinds)
	if err != nil || m.kind != kindChallenge {
		t.Fatalf("%v, %v; want a Challenge", m, err)
	}
	mustWrite(t, c, message{kind: kindAuthenticate, text: newAuthenticator(hostileSecret).answer(m.id)})
	return r
}

// hostileTunnel opens a tunnel from the hostile host from, and returns its control connection, the reader of its
// frames and the tunnel's public loopback address.
func hostileTunnel(t *testing.T, srv *Server, from string) (*net.TCPConn, *frameReader, string) {
	t.Helper()
	ctl := dialFrom(t, srv, from)
	r := hostileAuth(t, ctl)
	mustWrite(t, ctl, message{kind: kindHello})
	m, err := r.readMessage(serverKinds)
	if err != nil || m.kind != kindHello {
		t.Fatalf("%v, %v; want Hello", m, err)
	}
	return ctl, r, net.JoinHostPort("127.0.0.1", strconv.Itoa(int(m.port)))
}

// malformedFrames are payloads no honest peer sends, each ending the connection.
var malformedFrames = map[string][]byte{
	"over-long frame":        append(bytes.Repeat([]byte("a"), MaxFrameLength+1), 0),
	"64 KiB without NUL":     bytes.Repeat([]byte("{"), 64<<10),
	"not JSON":               []byte("garbage\x00"),
	"truncated JSON":         []byte(`{"Hello":`),
	"wrong type":             []byte(`{"Hello":"54321"}` + "\x00"),
	"negative port":          []byte(`{"Hello":-1}` + "\x00"),
	"port over 65535":        []byte(`{"Hello":70000}` + "\x00"),
	"two keys":               []byte(`{"Hello":1,"Accept":"x"}` + "\x00"),
	"invalid UTF-8":          []byte("{\"Authenticate\":\"\xff\xfe\"}\x00"),
	"server message":         []byte(`"Heartbeat"` + "\x00"),
	"null":                   []byte("null\x00"),
	"array":                  []byte(`["Hello",0]` + "\x00"),
	"accept of unknown id":   []byte(`{"Accept":"ffffffff-ffff-4fff-bfff-ffffffffffff"}` + "\x00"),
	"authenticate wrong tag": []byte(`{"Authenticate":"` + strings.Repeat("0", 64) + `"}` + "\x00"),
	"deeply nested":          append([]byte(strings.Repeat(`{"Hello":`, 40)), 0),
}

func TestHostileMalformedFrames(t *testing.T) {
	rig := newHostileRig(t, ServerConfig{})
	base := runtime.NumGoroutine()
	failures := rig.srv.Stats().AuthFailures
	for name, payload := range malformedFrames {
		// With the secret, the payload answers the challenge; authenticated, it is the first message.
		c := dialFrom(t, rig.srv, "127.0.0.2")
		c.Write(payload)
		closedByServer(t, c, name)

		c = dialFrom(t, rig.srv, "127.0.0.2")
		hostileAuth(t, c)
		c.Write(payload)
		closedByServer(t, c, name+" after authentication")
	}
	rig.honest("after malformed frames")
	if got := rig.srv.Stats().AuthFailures - failures; got != int64(len(malformedFrames)) {
		t.Errorf("AuthFailures grew by %d, want %d (one per unauthenticated malformed frame)", got, len(malformedFrames))
	}
	if st := rig.srv.Stats(); st.TunnelsOpen != 1 {
		t.Errorf("TunnelsOpen = %d, want only the honest one", st.TunnelsOpen)
	}
	settledGoroutines(t, base+2, "after malformed frames")
}

// Slow handshakes (a byte every 50 ms, never a whole frame) and silent connections end at the handshake timeout.
func TestHostileSlowHandshakes(t *testing.T) {
	rig := newHostileRig(t, ServerConfig{})
	base := runtime.NumGoroutine()
	var wg sync.WaitGroup
	for range 40 {
		c := dialFrom(t, rig.srv, "127.0.0.3")
		wg.Go(func() {
			done := make(chan struct{})
			go func() {
				defer close(done)
				closedByServer(t, c, "slow handshake")
			}()
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-done:
					return
				case <-tick.C:
					if _, err := c.Write([]byte("{")); err != nil {
						<-done
						return
					}
				}
			}
		})
	}
	rig.honest("during slow handshakes")
	wg.Wait()
	rig.honest("after slow handshakes")
	settledGoroutines(t, base+2, "after slow handshakes")
}

// Wrong secrets are refused and counted; the honest client is not disturbed.
func TestHostileWrongSecrets(t *testing.T) {
	rig := newHostileRig(t, ServerConfig{})
	before := rig.srv.Stats().AuthFailures
	for i := range 25 {
		cfg := clientConfig(t, rig.srv, 1, "wrong-"+strings.Repeat("x", i))
		cfg.Logger = slog.New(slog.DiscardHandler)
		c, err := NewClient(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Start(t.Context()); err == nil {
			c.Close()
			t.Fatalf("a client with a wrong secret got a tunnel")
		}
	}
	if got := rig.srv.Stats().AuthFailures - before; got != 25 {
		t.Errorf("AuthFailures grew by %d, want 25", got)
	}
	rig.honest("after wrong secrets")
}

// A flood of control connections that say nothing: the honest tunnel keeps working during it, and once the
// handshake timeout has passed every flood goroutine is gone and the heap is back.
func TestHostileControlFlood(t *testing.T) {
	rig := newHostileRig(t, ServerConfig{})
	base := runtime.NumGoroutine()
	heapBefore := heapInUse()
	const flood = 400
	conns := make([]*net.TCPConn, 0, flood)
	for i := range flood {
		conns = append(conns, dialFrom(t, rig.srv, "127.0.0."+strconv.Itoa(4+i%4)))
	}
	peak := runtime.NumGoroutine()
	rig.honest("during the control flood")
	for _, c := range conns {
		closedByServer(t, c, "flood connection")
	}
	rig.honest("after the control flood")
	after := settledGoroutines(t, base+2, "after the control flood")
	heapAfter := heapInUse()
	t.Logf("control flood of %d: goroutines %d before, %d at the peak, %d after; heap in use %d KiB before, %d KiB after",
		flood, base, peak, after, heapBefore>>10, heapAfter>>10)
	if grown := int64(heapAfter) - int64(heapBefore); grown > 16<<20 {
		t.Errorf("heap grew by %d KiB after the flood ended", grown>>10)
	}
}

// A hostile client opens a tunnel and never accepts its visitors, while a crowd connects to its public port:
// pending visitors are capped per client address and expire; the honest tunnel is not disturbed.
func TestHostileUnacceptedVisitorFlood(t *testing.T) {
	const pendingCap = 16
	rig := newHostileRig(t, ServerConfig{MaxPendingPerClient: pendingCap})
	base := runtime.NumGoroutine()

	ctl, r, hostilePublic := hostileTunnel(t, rig.srv, "127.0.0.9")
	go io.Copy(io.Discard, r.br) // the hostile client reads its frames and never accepts

	const visitors = 200
	var conns []net.Conn
	for range visitors {
		c, err := net.DialTimeout("tcp", hostilePublic, 5*time.Second)
		if err != nil {
			t.Fatalf("visitor: %v", err)
		}
		t.Cleanup(func() { c.Close() })
		conns = append(conns, c)
	}
	rig.honest("during the visitor flood")
	if st := rig.srv.Stats(); st.ConnectionsPending > pendingCap {
		t.Errorf("%d visitors pending, cap %d", st.ConnectionsPending, pendingCap)
	}
	for _, c := range conns {
		closedByServer(t, c, "unaccepted visitor")
	}
	st := rig.srv.Stats()
	if st.ConnectionsRejected+st.ConnectionsExpired < visitors || st.ConnectionsPending != 0 {
		t.Errorf("after the flood: %+v; want %d rejected or expired, none pending", st, visitors)
	}
	t.Logf("visitor flood of %d: %d rejected over the cap, %d expired unaccepted", visitors, st.ConnectionsRejected, st.ConnectionsExpired)
	rig.honest("after the visitor flood")
	ctl.Close()
	settledGoroutines(t, base+2, "after the visitor flood")
}

// An honest burst and a hostile flood at the same time, with the caps `stptunnel bore server` sets. The hostile
// client holds a tunnel from the honest client's own address (so the per-address cap is shared: the per-tunnel
// stall is what must hold the flood) and never accepts. A first wave of the flood waits on its port until the
// stall; then a second wave arrives while an honest burst goes through the honest tunnel. Every honest visitor
// is echoed in full; the second wave is refused at once; the first expires; the refusals are logged once per
// burst with their count.
func TestHostileFloodDuringHonestBurst(t *testing.T) {
	burst, wave := 500, 500
	if raceEnabled {
		burst, wave = 150, 250
	}
	const stall, expiry = 500 * time.Millisecond, 3 * time.Second
	var logs syncBuffer
	srv := startServer(t, ServerConfig{Secret: hostileSecret, MaxPendingPerClient: DefaultMaxPendingPerClient,
		AcceptStall: stall, PendingExpiry: expiry, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	cfg := clientConfig(t, srv, startEcho(t), hostileSecret)
	cfg.HandshakeTimeout = 0 // bore's 3 s: a burst on two cores
	cfg.Logger = discardLogger
	honest := publicLoopback(startClient(t, cfg))
	base := runtime.NumGoroutine()

	ctl, r, hostile := hostileTunnel(t, srv, "127.0.0.1")
	go io.Copy(io.Discard, r.br) // reads its frames, never accepts

	flood := func(n int) []net.Conn {
		conns := make([]net.Conn, n)
		var wg sync.WaitGroup
		for i := range conns {
			wg.Go(func() {
				c, err := net.DialTimeout("tcp", hostile, 10*time.Second)
				if err != nil {
					t.Errorf("hostile visitor: %v", err)
					return
				}
				t.Cleanup(func() { c.Close() })
				conns[i] = c
			})
		}
		wg.Wait()
		return conns
	}
	first := flood(wave)
	time.Sleep(stall + 100*time.Millisecond)
	rejectedBefore := srv.Stats().ConnectionsRejected

	var second []net.Conn
	waved := make(chan struct{})
	go func() {
		defer close(waved)
		second = flood(wave)
	}()
	load := dialEchoLoad(honest, burst, 60*time.Second)
	<-waved
	for _, err := range load.release() {
		t.Errorf("honest visitor: %v", err)
	}
	start := time.Now()
	for _, c := range second {
		if c != nil {
			closedByServer(t, c, "refused hostile visitor")
		}
	}
	if d := time.Since(start); d > expiry/2 {
		t.Errorf("the second wave was closed after %v: queued, not refused", d)
	}
	for _, c := range first {
		if c != nil {
			closedByServer(t, c, "expired hostile visitor")
		}
	}
	st := srv.Stats()
	if got := st.ConnectionsRejected - rejectedBefore; got != int64(wave) {
		t.Errorf("%d visitors refused during the honest burst, want the %d of the second wave", got, wave)
	}
	if st.ConnectionsExpired != int64(wave) || st.ConnectionsPending != 0 || st.ConnectionsForwarded != int64(burst) {
		t.Errorf("stats %+v; want %d expired, none pending, %d forwarded", st, wave, burst)
	}
	// One "visitors refused" line per burst, with the count: the refusals are all in the second wave.
	eventually(t, "the refusals logged", func() bool { return len(logs.lines("visitors refused")) > 0 })
	refusedLines := logs.lines("visitors refused")
	total := 0
	for _, line := range refusedLines {
		_, after, _ := strings.Cut(line, "count=")
		n, _ := strconv.Atoi(strings.Fields(after)[0])
		total += n
	}
	if len(refusedLines) > 2 || total != wave {
		t.Errorf("refusals logged in %d lines counting %d, want one or two lines counting %d:\n%s",
			len(refusedLines), total, wave, strings.Join(refusedLines, "\n"))
	}
	t.Logf("honest burst of %d: no error; hostile flood of 2 × %d: %d refused at once, %d expired; log: %q",
		burst, wave, st.ConnectionsRejected, st.ConnectionsExpired, refusedLines)
	ctl.Close()
	settledGoroutines(t, base+2, "after the flood")
}

// A hostile client that accepts slowly (one visitor every 100 ms, so it never stalls) while a crowd connects to
// its port: the waiting visitors are bounded by the per-address cap (memory) and by the expiry (age), the excess
// is refused at once and logged once with its count, and the honest tunnel keeps working.
func TestHostileSlowAccepter(t *testing.T) {
	const pendingCap, visitors = 32, 300
	var logs syncBuffer
	srv := startServer(t, ServerConfig{Secret: hostileSecret, MaxPendingPerClient: pendingCap,
		AcceptStall: 500 * time.Millisecond, PendingExpiry: time.Second, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	cfg := clientConfig(t, srv, startEcho(t), hostileSecret)
	cfg.Logger = discardLogger
	rig := &hostileRig{t: t, srv: srv, public: publicLoopback(startClient(t, cfg))}

	_, r, hostile := hostileTunnel(t, srv, "127.0.0.10")
	ids := make(chan uuid, visitors)
	go func() { // the hostile client reads its frames and accepts one visitor every 100 ms
		for {
			m, err := r.readMessage(serverKinds)
			if err != nil {
				close(ids)
				return
			}
			if m.kind == kindConnection {
				ids <- m.id
			}
		}
	}()
	stop := make(chan struct{})
	var accepter sync.WaitGroup
	accepter.Go(func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			select {
			case id := <-ids:
				c := dialFrom(t, srv, "127.0.0.10")
				hostileAuth(t, c)
				mustWrite(t, c, message{kind: kindAccept, id: id})
				c.Close()
			default:
			}
		}
	})
	defer accepter.Wait()
	defer close(stop)

	var peak atomic.Int64
	sampling := make(chan struct{})
	go func() {
		defer close(sampling)
		for {
			p := srv.Stats().ConnectionsPending
			if p > peak.Load() {
				peak.Store(p)
			}
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	conns := make([]net.Conn, 0, visitors)
	for range visitors {
		c, err := net.DialTimeout("tcp", hostile, 5*time.Second)
		if err != nil {
			t.Fatalf("visitor: %v", err)
		}
		t.Cleanup(func() { c.Close() })
		conns = append(conns, c)
		time.Sleep(2 * time.Millisecond)
	}
	rig.honest("during the slow accepter's flood")
	for _, c := range conns {
		closedByServer(t, c, "hostile visitor")
	}
	st := srv.Stats()
	if peak.Load() > pendingCap+1 { // + the honest visitor, counted in the same Stats
		t.Errorf("%d visitors waited at once, cap %d", peak.Load(), pendingCap)
	}
	if st.ConnectionsRejected == 0 || st.ConnectionsExpired == 0 || st.ConnectionsForwarded == 0 {
		t.Errorf("stats %+v; want some refused over the cap, some expired, some accepted", st)
	}
	eventually(t, "the refusals logged", func() bool { return len(logs.lines("visitors refused", "too many visitors waiting")) > 0 })
	if n := len(logs.lines("visitors refused")); n > 2 {
		t.Errorf("refusals logged in %d lines:\n%s", n, logs.String())
	}
	t.Logf("slow accepter, %d visitors: peak %d waiting (cap %d), %d refused, %d expired, %d accepted", visitors,
		peak.Load(), pendingCap, st.ConnectionsRejected, st.ConnectionsExpired, st.ConnectionsForwarded)
	rig.honest("after the slow accepter's flood")
}
