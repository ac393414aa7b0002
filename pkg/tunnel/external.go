package tunnel

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/stptunnel/stptunnel/pkg/bore"
	"github.com/stptunnel/stptunnel/pkg/connstr"
)

// BoreAssetName is the name of the bundled bore binary for a platform under assets/bore/, "" when none is
// bundled for it.
func BoreAssetName(goos, goarch string) string {
	switch {
	case goos == "linux" && goarch == "amd64":
		return "bore-linux"
	case goos == "linux" && goarch == "arm64":
		return "bore-linux-arm"
	case goos == "darwin" && goarch == "amd64":
		return "bore-macos"
	case goos == "darwin" && goarch == "arm64":
		return "bore-macos-arm"
	case goos == "windows":
		return "bore-win.exe"
	}
	return ""
}

// FindBore locates the bore binary: explicit (from --bore-path or STPTUNNEL_BORE_PATH) if given, else
// assets/bore/<BoreAssetName> beside executable (the running stptunnel), else "bore" on PATH. The file must
// exist and be executable.
func FindBore(explicit, executable string) (string, error) {
	if explicit != "" {
		if err := checkExecutable(explicit); err != nil {
			return "", fmt.Errorf("bore binary %s: %w", explicit, err)
		}
		return explicit, nil
	}
	var looked []string
	if name := BoreAssetName(runtime.GOOS, runtime.GOARCH); name != "" && executable != "" {
		p := filepath.Join(filepath.Dir(executable), "assets", "bore", name)
		if checkExecutable(p) == nil {
			return p, nil
		}
		looked = append(looked, p)
	}
	p, err := exec.LookPath("bore")
	if err == nil {
		return p, nil
	}
	looked = append(looked, "bore on PATH")
	return "", fmt.Errorf("no bore binary found (looked at %s): install bore or give --bore-path", strings.Join(looked, ", "))
}

func checkExecutable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return errors.New("is a directory")
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o111 == 0 {
		return fs.ErrPermission
	}
	return nil
}

var (
	ansiCodes     = regexp.MustCompile(`\x1b\[[0-9;?]*[ -/]*[@-~]`)
	listeningLine = regexp.MustCompile(`listening at (\S+)`)
)

// StripANSI removes terminal escape sequences (bore colours its logs).
func StripANSI(s string) string { return ansiCodes.ReplaceAllString(s, "") }

// ParseListening finds bore's "listening at HOST:PORT" in a log line and returns the public port.
func ParseListening(line string) (int, bool) {
	m := listeningLine.FindStringSubmatch(StripANSI(line))
	if m == nil {
		return 0, false
	}
	_, p, err := net.SplitHostPort(m[1])
	if err != nil {
		return 0, false
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 1 || port > 65535 {
		return 0, false
	}
	return port, true
}

// classifyOutput maps what bore printed when it failed to the causes of pkg/bore.
func classifyOutput(text string) error {
	t := strings.ToLower(text)
	switch {
	case strings.Contains(t, "invalid secret"):
		return bore.ErrInvalidSecret
	case strings.Contains(t, "requires secret"), strings.Contains(t, "requires authentication"):
		return bore.ErrSecretRequired
	case strings.Contains(t, "expected authentication challenge"):
		return bore.ErrSecretNotRequired
	case strings.Contains(t, "port already in use"), strings.Contains(t, "not in allowed range"),
		strings.Contains(t, "available port"), strings.Contains(t, "failed to bind"),
		strings.Contains(t, "permission denied"):
		return bore.ErrPortUnavailable
	case strings.Contains(t, "connection refused"):
		return bore.ErrConnectionRefused
	case strings.Contains(t, "could not connect"), strings.Contains(t, "failed to lookup"),
		strings.Contains(t, "timed out"), strings.Contains(t, "no route"), strings.Contains(t, "unreachable"):
		return bore.ErrUnreachable
	}
	return nil
}

// boreProcess runs `bore local` as one link: up once it printed "listening at", dead once it exited.
type boreProcess struct {
	path       string
	args       []string
	secret     string
	serverHost string
	timeout    time.Duration
	log        *slog.Logger

	mu     sync.Mutex
	cancel context.CancelFunc
	public string
	tail   []string // the last lines it printed, for error messages
	done   chan struct{}
	err    error
}

func newBoreProcess(spec Spec, server Server, local connstr.HostPort, port int, timeout time.Duration, log *slog.Logger) (*boreProcess, error) {
	host, to := server.Addr, server.Addr
	if h, p, err := net.SplitHostPort(server.Addr); err == nil {
		host = h
		if p == strconv.Itoa(bore.DefaultControlPort) {
			to = h // upstream bore takes a host only and always uses the default control port
		}
	}
	args := []string{"local", strconv.Itoa(local.Port), "--local-host", local.Host, "--to", to}
	if port != 0 {
		args = append(args, "--port", strconv.Itoa(port))
	}
	return &boreProcess{path: spec.BorePath, args: args, secret: server.Secret, serverHost: host, timeout: timeout,
		log: log, done: make(chan struct{})}, nil
}

// Start runs bore and returns once it printed its public address, or with why it could not.
func (p *boreProcess) Start(parent context.Context) error {
	ctx, cancel := context.WithCancel(parent)
	p.mu.Lock()
	p.cancel = cancel
	p.mu.Unlock()
	cmd := exec.CommandContext(ctx, p.path, p.args...)
	cmd.Env = boreEnv(cmd.Environ(), p.secret)
	cmd.Cancel = func() error { return interrupt(cmd.Process) }
	cmd.WaitDelay = 3 * time.Second
	setChildAttrs(cmd)
	stdout, err := cmd.StdoutPipe()
	if err == nil {
		cmd.Stderr = cmd.Stdout // one stream: bore logs on stdout and reports its final error on stderr
	}
	if err == nil {
		err = cmd.Start()
	}
	if err != nil {
		cancel()
		p.finish(err)
		return fmt.Errorf("running %s: %w", p.path, err)
	}
	listening := make(chan int, 1)
	go func() {
		p.read(stdout, listening)
		err := cmd.Wait()
		if ctx.Err() != nil { // stopped by us
			err = nil
		} else {
			err = p.exitError(err)
		}
		cancel()
		p.finish(err)
	}()
	timer := time.NewTimer(p.timeout)
	defer timer.Stop()
	select {
	case port := <-listening:
		p.mu.Lock()
		p.public = net.JoinHostPort(p.serverHost, strconv.Itoa(port))
		p.mu.Unlock()
		p.log.Info("bore listening at "+p.PublicAddr(), "pid", cmd.Process.Pid)
		return nil
	case <-p.done:
		if parent.Err() != nil {
			return parent.Err()
		}
		return p.Wait()
	case <-timer.C:
		cancel()
		<-p.done
		return fmt.Errorf("%w: %s printed no public address within %v", bore.ErrUnreachable, p.path, p.timeout)
	}
}

// read scans bore's output: it reports the public port once, keeps the last lines, and logs the rest.
func (p *boreProcess) read(r io.Reader, listening chan<- int) {
	sc := bufio.NewScanner(r)
	found := false
	for sc.Scan() {
		line := strings.TrimSpace(StripANSI(sc.Text()))
		if line == "" {
			continue
		}
		if port, ok := ParseListening(line); ok && !found {
			found = true
			listening <- port
		}
		p.mu.Lock()
		p.tail = append(p.tail, line)
		if len(p.tail) > 8 {
			p.tail = p.tail[1:]
		}
		p.mu.Unlock()
		p.log.Debug("bore: " + line)
	}
	io.Copy(io.Discard, r) // a line too long for the scanner: keep draining so bore never blocks
}

// exitError explains an unexpected exit with what bore printed last, classified when bore said why.
func (p *boreProcess) exitError(waitErr error) error {
	p.mu.Lock()
	text := strings.Join(p.tail, "\n")
	last := ""
	if len(p.tail) > 0 {
		last = p.tail[len(p.tail)-1]
	}
	p.mu.Unlock()
	status := "bore exited"
	if waitErr != nil {
		status = "bore exited (" + waitErr.Error() + ")"
	}
	if strings.HasPrefix(last, "Error") { // bore's last word when it fails; otherwise only logs came before
		status += ": " + last
	}
	if cause := classifyOutput(text); cause != nil {
		return fmt.Errorf("%w: %s", cause, status)
	}
	return fmt.Errorf("%w: %s", bore.ErrLinkLost, status)
}

func (p *boreProcess) finish(err error) {
	p.mu.Lock()
	p.err = err
	p.mu.Unlock()
	close(p.done)
}

// boreEnv gives bore the secret through BORE_SECRET (never argv, which every user can read) and removes the
// variables that would override the flags we pass.
func boreEnv(env []string, secret string) []string {
	out := env[:0:0]
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		switch strings.ToUpper(k) {
		case "BORE_SECRET", "BORE_SERVER", "BORE_LOCAL_PORT":
			continue
		}
		out = append(out, kv)
	}
	if secret != "" {
		out = append(out, "BORE_SECRET="+secret)
	}
	return out
}

func (p *boreProcess) PublicAddr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.public
}

// Wait returns once bore has exited: nil after Close, else why it ended.
func (p *boreProcess) Wait() error {
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Close stops bore (interrupt, then kill after a grace period) and waits for it.
func (p *boreProcess) Close() error {
	p.mu.Lock()
	cancel := p.cancel
	p.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	<-p.done
	return nil
}
