//go:build linux

package bore

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkConcurrent1000 relays 1000 connections open at the same time, each echoing its own 1200-byte payload,
// with the echo service, the bore server and the bore client each in a process of its own (this test binary
// started again in a role), so that each one's peak RSS and goroutines can be told apart:
//
//   - Direct: the load goes straight to the echo service;
//   - Tunnel: the load goes to the server's public port, relayed by the client to the echo service.
//
// Reported per run: errors (connections that failed or echoed wrong bytes; must be 0), and for each process
// (service, server, client) its peak RSS in MB (VmHWM) and its peak number of goroutines. The time is that of the
// 1000 exchanges once all connections are open. The client caps GOMAXPROCS as the CLI's client commands do
// (LimitClientProcs; GOMAXPROCS in the environment overrides it). Linux only (VmHWM); one iteration takes seconds: -benchtime=1x.
func BenchmarkConcurrent1000(b *testing.B) {
	const n = 1000
	for _, name := range []string{"Direct", "Tunnel"} {
		b.Run(name, func(b *testing.B) {
			var totals map[string]float64
			for range b.N {
				m := runConcurrent(b, name == "Tunnel", n)
				if totals == nil {
					totals = map[string]float64{}
				}
				for k, v := range m {
					totals[k] += v
				}
			}
			for k, v := range totals {
				b.ReportMetric(v/float64(b.N), k)
			}
		})
	}
}

// scaleRoleEnv names the role this test binary plays when it is started as a helper process of
// BenchmarkConcurrent1000; scaleArgEnv holds the role's argument.
const (
	scaleRoleEnv = "STPTUNNEL_BORE_SCALE_ROLE"
	scaleArgEnv  = "STPTUNNEL_BORE_SCALE_ARG"
)

func TestMain(m *testing.M) {
	if os.Getenv("STPTUNNEL_BORE_RELAY") == "buffered" { // benchmarks: the relay through pooled buffers
		relaySplice = false
	}
	if role := os.Getenv(scaleRoleEnv); role != "" {
		os.Exit(runScaleRole(role, os.Getenv(scaleArgEnv), os.Stdin, os.Stdout))
	}
	os.Exit(m.Run())
}

// runConcurrent starts the processes, opens n connections, waits until all are relayed at once, exchanges the
// payloads and returns the metrics.
func runConcurrent(b *testing.B, tunnel bool, n int) map[string]float64 {
	b.StopTimer()
	service := startRole(b, "echo", "")
	target := service.addr
	procs := map[string]*roleProcess{"service": service}
	relaying := service // the process that counts the connections being relayed
	if tunnel {
		server := startRole(b, "server", "")
		client := startRole(b, "client", server.addr+" "+service.addr)
		procs["server"], procs["client"] = server, client
		target, relaying = client.addr, server
	}

	b.StartTimer()
	load := dialEchoLoad(target, n, 60*time.Second)
	deadline := time.Now().Add(30 * time.Second)
	for !load.failedDials() && relaying.stats(b)["active"] < float64(n) {
		if time.Now().After(deadline) {
			b.Errorf("only %v of %d connections relayed at once after 30 s", relaying.stats(b)["active"], n)
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	m := map[string]float64{}
	for name, p := range procs { // what holding n connections costs: goroutine stacks and heap objects
		st := p.stats(b)
		m[name+"-stacks-MB"] = st["stacks-kb"] / 1024
		m[name+"-heap-MB"] = st["heap-kb"] / 1024
	}
	errs := load.release()
	b.StopTimer()
	for _, err := range errs {
		b.Log(err)
	}
	m["errors"] = float64(len(errs))
	for name, p := range procs {
		st := p.stats(b)
		m[name+"-rss-MB"] = st["hwm-kb"] / 1024
		m[name+"-goroutines"] = st["peak-goroutines"]
		p.stop(b)
	}
	return m
}

// roleProcess is a helper process and its line protocol: it prints "ready ADDR", then answers each "stats" line
// on its stdin with one line of key=value pairs, and exits when its stdin is closed.
type roleProcess struct {
	role  string
	cmd   *exec.Cmd
	addr  string
	stdin io.WriteCloser
	out   *bufio.Scanner
	mu    sync.Mutex

	lastNote string // the note of the last answer to ask
}

func startRole(b *testing.B, role, arg string) *roleProcess {
	b.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), scaleRoleEnv+"="+role, scaleArgEnv+"="+arg)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	p := &roleProcess{role: role, cmd: cmd, stdin: stdin, out: bufio.NewScanner(stdout)}
	b.Cleanup(func() { p.stop(b) })
	if !p.out.Scan() {
		b.Fatalf("%s: no ready line: %v", role, p.out.Err())
	}
	addr, ok := strings.CutPrefix(p.out.Text(), "ready ")
	if !ok {
		b.Fatalf("%s: %q, want ready ADDR", role, p.out.Text())
	}
	p.addr = addr
	return p
}

func (p *roleProcess) stats(b *testing.B) map[string]float64 {
	b.Helper()
	return p.ask(b, "stats")
}

// ask sends one command line and returns the numeric fields of the answer; a note="..." field is kept in
// lastNote. An answer with err=1 fails the benchmark.
func (p *roleProcess) ask(b *testing.B, command string) map[string]float64 {
	b.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, err := io.WriteString(p.stdin, command+"\n"); err != nil {
		b.Fatalf("asking %s %q: %v", p.role, command, err)
	}
	if !p.out.Scan() {
		b.Fatalf("%s: no answer to %q: %v", p.role, command, p.out.Err())
	}
	line := p.out.Text()
	p.lastNote = ""
	if i := strings.Index(line, ` note="`); i >= 0 {
		p.lastNote, _ = strconv.Unquote(line[i+6:])
		line = line[:i]
	}
	m := map[string]float64{}
	for field := range strings.FieldsSeq(line) {
		k, v, _ := strings.Cut(field, "=")
		m[k], _ = strconv.ParseFloat(v, 64)
	}
	if m["err"] != 0 {
		b.Fatalf("%s %q: %s", p.role, command, p.lastNote)
	}
	return m
}

func (p *roleProcess) stop(b *testing.B) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd.ProcessState != nil {
		return
	}
	p.stdin.Close()
	if err := p.cmd.Wait(); err != nil {
		b.Errorf("%s: %v", p.role, err)
	}
}

// runScaleRole is main for a helper process: echo (a loopback echo service), server (a bore server on
// loopback), client (a bore client; arg is "SERVER_ADDR LOCAL_ADDR"), or the service and load roles of
// BenchmarkProcesses. It returns the exit code.
func runScaleRole(role, arg string, stdin io.Reader, stdout io.Writer) int {
	switch role {
	case "service":
		return runServiceRole(stdin, stdout)
	case "load":
		return runLoadRole(stdin, stdout)
	case "delay":
		return runDelayRole(arg, stdin, stdout)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var peak atomic.Int64
	go func() { // goroutines are sampled, so a peak between two samples can be missed by a few
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for range tick.C {
			if g := int64(runtime.NumGoroutine()); g > peak.Load() {
				peak.Store(g)
			}
		}
	}()
	var addr string
	var active func() int64
	switch role {
	case "echo":
		l, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return fail(err)
		}
		defer l.Close()
		var open atomic.Int64
		go func() {
			for {
				c, err := l.AcceptTCP()
				if err != nil {
					return
				}
				open.Add(1)
				go func() {
					defer open.Add(-1)
					defer c.Close()
					io.Copy(c, c)
					c.CloseWrite()
				}()
			}
		}()
		addr, active = l.Addr().String(), open.Load
	case "server":
		s, err := NewServer(ServerConfig{BindAddr: "127.0.0.1", Logger: discardLogger})
		if err != nil {
			return fail(err)
		}
		if err := s.Start(ctx); err != nil {
			return fail(err)
		}
		defer s.Close()
		addr, active = s.Addr().String(), func() int64 { return s.Stats().ConnectionsActive }
	case "client":
		LimitClientProcs(os.Getenv) // as the CLI's client commands do
		server, local, _ := strings.Cut(arg, " ")
		host, port, err := net.SplitHostPort(local)
		if err != nil {
			return fail(err)
		}
		localPort, _ := strconv.Atoi(port)
		c, err := NewClient(ClientConfig{Server: server, LocalHost: host, LocalPort: localPort, Logger: discardLogger})
		if err != nil {
			return fail(err)
		}
		if err := c.Start(ctx); err != nil {
			return fail(err)
		}
		defer c.Close()
		addr, active = publicLoopback(c), func() int64 { return 0 }
	default:
		return fail(fmt.Errorf("unknown role %q", role))
	}
	fmt.Fprintf(stdout, "ready %s\n", addr)
	in := bufio.NewScanner(stdin)
	for in.Scan() {
		if in.Text() != "stats" {
			continue
		}
		g := int64(runtime.NumGoroutine())
		ms := []metrics.Sample{{Name: "/memory/classes/heap/stacks:bytes"}, {Name: "/memory/classes/heap/objects:bytes"}}
		metrics.Read(ms)
		fmt.Fprintf(stdout, "active=%d goroutines=%d peak-goroutines=%d hwm-kb=%d stacks-kb=%d heap-kb=%d\n", active(), g,
			max(g, peak.Load()), procStatusKB(0, "VmHWM:"), ms[0].Value.Uint64()>>10, ms[1].Value.Uint64()>>10)
	}
	return 0
}

func fail(err error) int {
	fmt.Fprintln(os.Stderr, err)
	return 1
}
