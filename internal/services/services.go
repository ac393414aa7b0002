// Package services starts real database servers for the end-to-end tests: PostgreSQL, MariaDB (as MySQL) and
// Redis from their Debian packages, and dynalite (DynamoDB Local, from npm). Each server gets a free loopback
// port, a data directory of its own that is removed when it stops, and an application user whose password is
// full of the characters real passwords have and connection strings must escape.
//
// Start returns once the server answers its own protocol (a login, a PING, a ListTables), never after a fixed
// sleep, and Close stops the server and waits for it. When the server is not installed Start returns a
// *NotInstalledError; Need turns it into a skip, or into a failure where STPTUNNEL_REQUIRE_SERVICES=1 (CI, where
// every service is installed, so a skip there would hide a test that did not run).
//
// initdb, postgres and mariadbd refuse to run as root: under root the harness runs them as the user the Debian
// package created (postgres, mysql), with data directories that user owns.
package services

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sethvargo/go-retry"
)

// RequireEnv names the variable that turns a missing service into a failure instead of a skip.
const RequireEnv = "STPTUNNEL_REQUIRE_SERVICES"

// Kinds of server, as Start and the testscript commands name them.
const (
	KindPostgres = "postgres"
	KindMariaDB  = "mariadb"
	KindRedis    = "redis"
	KindDynalite = "dynalite"
)

// Kinds lists every kind Start knows.
var Kinds = []string{KindPostgres, KindMariaDB, KindRedis, KindDynalite}

// DefaultPassword is the application user's password unless Options says otherwise: '@', ':', '/', '%', '#',
// '?', '&', '=', a space and a quote, each of which breaks a connection string that does not escape it.
const DefaultPassword = `s3cr@t:p/ss w%rd#?&='x`

// Options tune a server. The zero value is what the tests use.
type Options struct {
	// User, Password and Database are the application's credentials. Defaults: stp, DefaultPassword, app.
	// Redis has no users: only Password applies (requirepass). dynalite ignores all three.
	User, Password, Database string
	// ReadyTimeout bounds the wait for the server to answer. Default 60 s.
	ReadyTimeout time.Duration
}

func (o Options) withDefaults() Options {
	if o.User == "" {
		o.User = "stp"
	}
	if o.Password == "" {
		o.Password = DefaultPassword
	}
	if o.Database == "" {
		o.Database = "app"
	}
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = 60 * time.Second
	}
	return o
}

// Server is one running database server.
type Server struct {
	Kind                     string
	Host                     string // always 127.0.0.1
	Port                     int
	User, Password, Database string
	// Startup is how long Start took, from nothing to a server answering.
	Startup time.Duration

	dir  string
	proc *process
	once sync.Once
	err  error
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// LocalAddr is the address a developer writes: localhost:PORT.
func (s *Server) LocalAddr() string { return "localhost:" + strconv.Itoa(s.Port) }

// URL is the connection string a developer would put in a function's environment: the scheme's URL form with
// localhost, the escaped password and, for PostgreSQL, sslmode=disable (the test servers have no TLS).
func (s *Server) URL() string {
	switch s.Kind {
	case KindPostgres:
		return "postgres://" + url.UserPassword(s.User, s.Password).String() + "@" + s.LocalAddr() + "/" + s.Database + "?sslmode=disable"
	case KindMariaDB:
		return "mysql://" + url.UserPassword(s.User, s.Password).String() + "@" + s.LocalAddr() + "/" + s.Database
	case KindRedis:
		return "redis://" + url.UserPassword("", s.Password).String() + "@" + s.LocalAddr() + "/0"
	default:
		return "http://" + s.LocalAddr()
	}
}

// Log is what the server wrote on stdout and stderr so far, for failure messages.
func (s *Server) Log() string { return s.proc.log.String() }

// Close stops the server, waits for it to exit and removes its data directory. It is safe to call twice.
func (s *Server) Close() error {
	s.once.Do(func() {
		s.err = s.proc.stop()
		if err := os.RemoveAll(s.dir); err != nil && s.err == nil {
			s.err = err
		}
	})
	return s.err
}

// NotInstalledError says a server's programs are not on this machine.
type NotInstalledError struct {
	Kind    string
	Missing string // the program looked for
	Install string // how to install it
}

func (e *NotInstalledError) Error() string {
	return fmt.Sprintf("%s is not installed (%s not found): %s", e.Kind, e.Missing, e.Install)
}

// Required reports whether STPTUNNEL_REQUIRE_SERVICES=1: every service must be there.
func Required() bool { return os.Getenv(RequireEnv) == "1" }

// SkipReason returns the message to skip with when err only says the service is missing and missing services
// are allowed, and "" when err must fail the test.
func SkipReason(err error) string {
	var missing *NotInstalledError
	if errors.As(err, &missing) && !Required() {
		return err.Error() + " (set " + RequireEnv + "=1 to make this a failure)"
	}
	return ""
}

// Need skips t when err says a service is not installed and STPTUNNEL_REQUIRE_SERVICES is not 1, and fails t
// for any other error.
func Need(t testing.TB, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if reason := SkipReason(err); reason != "" {
		t.Skip(reason)
	}
	t.Fatal(err)
}

// Start starts a server of the given kind.
func Start(ctx context.Context, kind string, opts Options) (*Server, error) {
	switch kind {
	case KindPostgres:
		return StartPostgres(ctx, opts)
	case KindMariaDB:
		return StartMariaDB(ctx, opts)
	case KindRedis:
		return StartRedis(ctx, opts)
	case KindDynalite:
		return StartDynalite(ctx, opts)
	}
	return nil, unknownKind(kind)
}

// StartT starts a server for a test: skipped or failed as Need says when it cannot, stopped when the test ends.
func StartT(t testing.TB, kind string, opts Options) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := Start(ctx, kind, opts)
	Need(t, err)
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("stopping %s: %v", kind, err)
		}
	})
	t.Logf("%s listening on %s (started in %v)", kind, s.Addr(), s.Startup.Round(time.Millisecond))
	return s
}

// lookPath finds the first of names on PATH or in dirs.
func lookPath(kind, install string, dirs []string, names ...string) (string, error) {
	for _, name := range names {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
		for _, d := range dirs {
			p := filepath.Join(d, name)
			if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
				return p, nil
			}
		}
	}
	return "", &NotInstalledError{Kind: kind, Missing: strings.Join(names, " or "), Install: install}
}

// account is the user a server runs as: the current one, or the package's user when we are root.
type account struct {
	cred *syscall.Credential // nil: run as ourselves
	uid  int
	gid  int
}

// accountFor returns who runs a server that refuses root: name when we are root, ourselves otherwise.
func accountFor(kind, name string) (account, error) {
	if os.Geteuid() != 0 {
		return account{uid: -1, gid: -1}, nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return account{}, &NotInstalledError{Kind: kind, Missing: "user " + name,
			Install: "running as root, " + kind + " needs the unprivileged user its Debian package creates"}
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return account{cred: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, uid: uid, gid: gid}, nil
}

// newDir makes the server's directory under the system temp directory (world-traversable, unlike a test's
// TempDir, so an unprivileged server user can reach it) owned by acc.
func newDir(kind string, acc account) (string, error) {
	dir, err := os.MkdirTemp("", "stptunnel-"+kind+"-")
	if err != nil {
		return "", err
	}
	if acc.cred != nil {
		if err := os.Chown(dir, acc.uid, acc.gid); err != nil {
			os.RemoveAll(dir)
			return "", err
		}
	}
	return dir, nil
}

// writeFile writes a file acc can read and nobody else.
func writeFile(path string, data []byte, acc account) error {
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return err
	}
	if acc.cred != nil {
		return os.Chown(path, acc.uid, acc.gid)
	}
	return nil
}

// freePort asks the kernel for a free loopback port. Another process may take it before the server binds it:
// the start functions then retry with another port (errPortTaken).
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// errPortTaken is returned by a start attempt whose server could not bind its port.
var errPortTaken = errors.New("port already in use")

// withFreePort runs start with a free port, again with another port if that one was taken meanwhile.
func withFreePort(start func(port int) error) error {
	var err error
	for range 3 {
		var port int
		if port, err = freePort(); err != nil {
			return err
		}
		if err = start(port); !errors.Is(err, errPortTaken) {
			return err
		}
	}
	return err
}

// process is a server's running program.
type process struct {
	cmd  *exec.Cmd
	log  *syncBuffer
	done chan struct{} // closed when the program has exited
	err  error         // its exit status, once done is closed
	// stopSignal asks the program for a clean, fast shutdown.
	stopSignal syscall.Signal
}

// runOnce runs a setup program (initdb) to completion as acc.
func runOnce(ctx context.Context, acc account, dir string, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: acc.cred, Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w\n%s", filepath.Base(name), err, out)
	}
	return nil
}

// launch starts a server program as acc.
func launch(acc account, dir string, stop syscall.Signal, name string, args ...string) (*process, error) {
	p := &process{log: &syncBuffer{}, done: make(chan struct{}), stopSignal: stop}
	p.cmd = exec.Command(name, args...)
	p.cmd.Dir = dir
	p.cmd.Stdout = p.log
	p.cmd.Stderr = p.log
	// Its own process group, so a Ctrl-C on the test does not reach it before Close does; killed with the test.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: acc.cred, Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", filepath.Base(name), err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the program has exited.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop asks the program to shut down and waits; after 10 s it is killed.
func (p *process) stop() error {
	if p.exited() {
		return nil
	}
	_ = p.cmd.Process.Signal(p.stopSignal)
	select {
	case <-p.done:
		return nil
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		return fmt.Errorf("%s did not stop within 10 s of %v: killed", filepath.Base(p.cmd.Path), p.stopSignal)
	}
}

// waitReady polls ping until it succeeds, the program exits, or the timeout passes. A program that exited
// complaining that its address is in use is errPortTaken.
func waitReady(ctx context.Context, p *process, timeout time.Duration, ping func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	backoff := retry.WithCappedDuration(100*time.Millisecond, retry.NewExponential(10*time.Millisecond))
	var last error
	err := retry.Do(ctx, backoff, func(ctx context.Context) error {
		if p.exited() {
			return errExited
		}
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		defer pcancel()
		if last = ping(pctx); last != nil {
			return retry.RetryableError(last)
		}
		return nil
	})
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errExited):
		log := p.log.String()
		if strings.Contains(strings.ToLower(log), "address already in use") {
			return errPortTaken
		}
		return fmt.Errorf("%s exited before it was ready (%v):\n%s", filepath.Base(p.cmd.Path), p.err, tail(log))
	default:
		return fmt.Errorf("%s not ready after %v: %v\n%s", filepath.Base(p.cmd.Path), timeout, last, tail(p.log.String()))
	}
}

var errExited = errors.New("server exited")

// tail keeps the end of a long log.
func tail(s string) string {
	const max = 4000
	if len(s) > max {
		return "..." + s[len(s)-max:]
	}
	return s
}

// syncBuffer is a bytes.Buffer safe for a program's two output streams and a reader.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startServer is the common shape of the start functions: a directory, then the program on a free port until it
// answers. launchAt starts the program for a port; ping asks it whether it is ready.
// begin is when the start function was called, setup included.
func startServer(ctx context.Context, begin time.Time, kind string, opts Options, dir string,
	launchAt func(port int) (*process, error), ping func(ctx context.Context, port int) error) (*Server, error) {
	s := &Server{Kind: kind, Host: "127.0.0.1", User: opts.User, Password: opts.Password, Database: opts.Database, dir: dir}
	err := withFreePort(func(port int) error {
		p, err := launchAt(port)
		if err != nil {
			return err
		}
		err = waitReady(ctx, p, opts.ReadyTimeout, func(ctx context.Context) error { return ping(ctx, port) })
		if err != nil {
			_ = p.stop()
			return err
		}
		s.Port, s.proc = port, p
		return nil
	})
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("starting %s: %w", kind, err)
	}
	s.Startup = time.Since(begin)
	return s, nil
}

// Signals asking each server for a quick clean shutdown: postgres takes SIGINT as "fast shutdown".
const (
	sigintFastShutdown = syscall.SIGINT
	sigterm            = syscall.SIGTERM
)
