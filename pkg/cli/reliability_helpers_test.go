package cli

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stptunnel/stptunnel/internal/echotest"
	"github.com/stptunnel/stptunnel/pkg/awssim"
	"github.com/stptunnel/stptunnel/pkg/bore"
	"github.com/stptunnel/stptunnel/pkg/bore/boretest"
)

// Helpers shared by the reliability suite (reliability_*_test.go): a watched output buffer, a TCP proxy that can
// hold or silently stop its connections, and the loopback services a dev session needs.

// reliabilityWait bounds every wait of the suite: long enough for a loaded 2-core machine, short enough to fail.
const reliabilityWait = 90 * time.Second

// watchBuffer collects a process's output and lets a test wait until it holds a string.
type watchBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{}
}

func newWatchBuffer() *watchBuffer { return &watchBuffer{changed: make(chan struct{})} }

func (w *watchBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.b.Write(p)
	close(w.changed)
	w.changed = make(chan struct{})
	return n, err
}

func (w *watchBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// waitFor waits until the buffer holds s, the process ended (exited is closed) or the wait bound passed.
func (w *watchBuffer) waitFor(s string, exited <-chan struct{}) bool {
	deadline := time.NewTimer(reliabilityWait)
	defer deadline.Stop()
	for {
		w.mu.Lock()
		found, changed := strings.Contains(w.b.String(), s), w.changed
		w.mu.Unlock()
		if found {
			return true
		}
		select {
		case <-changed:
		case <-exited:
			return strings.Contains(w.String(), s)
		case <-deadline.C:
			return false
		}
	}
}

// holdProxy forwards TCP connections to a target. It can hold new connections (accept them and forward nothing:
// a server that never answers) and freeze the established ones (stop forwarding without a FIN: a link that died
// silently, as behind a NAT that dropped its state).
type holdProxy struct {
	ln     net.Listener
	target string

	mu       sync.Mutex
	hold     bool
	accepted int
	links    []*proxyLink
	changed  chan struct{}
	wg       sync.WaitGroup
}

type proxyLink struct {
	client, server net.Conn
	mu             sync.Mutex
	frozen         bool
}

func (l *proxyLink) isFrozen() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.frozen
}

func startHoldProxy(t testing.TB, target string) *holdProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &holdProxy{ln: ln, target: target, changed: make(chan struct{})}
	p.wg.Go(p.serve)
	t.Cleanup(p.close)
	return p
}

func (p *holdProxy) addr() string { return p.ln.Addr().String() }

func (p *holdProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		hold := p.hold
		link := &proxyLink{client: c}
		p.links = append(p.links, link)
		p.accepted++
		close(p.changed)
		p.changed = make(chan struct{})
		p.mu.Unlock()
		if hold {
			continue // kept open, never answered: closed by release or close
		}
		s, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			c.Close()
			continue
		}
		link.mu.Lock()
		link.server = s
		link.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			defer dst.Close()
			defer src.Close()
			buf := make([]byte, 32<<10)
			for {
				n, err := src.Read(buf)
				if n > 0 && !link.isFrozen() {
					if _, werr := dst.Write(buf[:n]); werr != nil {
						return
					}
				}
				if err != nil {
					if link.isFrozen() {
						// A frozen link says nothing, not even goodbye: wait for close to end it.
						io.Copy(io.Discard, dst)
					}
					return
				}
			}
		}
		p.wg.Go(func() { pipe(s, c) })
		p.wg.Go(func() { pipe(c, s) })
	}
}

// setHold makes the proxy hold (true) or forward (false) the connections it accepts from now on. Releasing also
// closes the connections held so far.
func (p *holdProxy) setHold(hold bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hold = hold
	if hold {
		return
	}
	for _, l := range p.links {
		if l.server == nil {
			l.client.Close()
		}
	}
}

// freeze silently stops every established connection: bytes are read and dropped in both directions, and no
// side sees a FIN. Connections accepted later are forwarded normally.
func (p *holdProxy) freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.links {
		l.mu.Lock()
		l.frozen = true
		l.mu.Unlock()
	}
}

// waitAccepted waits until the proxy has accepted more than n connections.
func (p *holdProxy) waitAccepted(n int, exited <-chan struct{}) bool {
	deadline := time.NewTimer(reliabilityWait)
	defer deadline.Stop()
	for {
		p.mu.Lock()
		got, changed := p.accepted, p.changed
		p.mu.Unlock()
		if got > n {
			return true
		}
		select {
		case <-changed:
		case <-exited:
			return false
		case <-deadline.C:
			return false
		}
	}
}

func (p *holdProxy) acceptedCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

func (p *holdProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for _, l := range p.links {
		l.client.Close()
		if l.server != nil {
			l.server.Close()
		}
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// startTestDatabase is a local "database": a loopback TCP service that echoes. It returns its port and a stop
// function (also run at the end of the test).
func startTestDatabase(t testing.TB, port int) (int, func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	return ln.Addr().(*net.TCPAddr).Port, echotest.Serve(t, ln)
}

// stptunnelBinary returns a hard link (or copy) of this test binary named stptunnel, as testscript makes: the
// processes stptunnel starts itself from os.Executable (the detached tunnel holder) then run as stptunnel too,
// not as the test binary.
func stptunnelBinary(t testing.TB) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "stptunnel")
	if err := os.Link(exe, path); err != nil {
		b, err := os.ReadFile(exe)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

// world is what a session test runs against: the emulator holding one function, api, deployed the usual way (its
// variable names the cloud database), a bore server and a local echo "database" (stopDB stops it).
type world struct {
	sim    *awssim.Server
	bore   *bore.Server
	dbPort int
	stopDB func()
}

const deployedURL = "postgres://admin:Cl0udPw@db.cluster-x.eu-west-1.rds.amazonaws.com:5432/app"

func newWorld(t *testing.T) *world {
	t.Helper()
	sim, err := awssim.New(awssim.Options{Region: "eu-west-1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	sim.PutFunction(awssim.Function{Name: "api", Env: map[string]string{"STP_POSTGRES_DB_CONNECTION_STRING": deployedURL}})
	w := &world{sim: sim, bore: boretest.Start(t, bore.ServerConfig{})}
	w.dbPort, w.stopDB = startTestDatabase(t, 0)
	return w
}

// local is the --local flag of the world's database, with password.
func (w *world) local(password string) string {
	return fmt.Sprintf("postgresDb=postgres://app:%s@127.0.0.1:%d/app", password, w.dbPort)
}

// start starts cmd and returns a channel closed when it has exited; the test kills it if it still runs.
func start(t *testing.T, cmd *exec.Cmd) <-chan struct{} {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-exited })
	return exited
}
