//go:build linux

package bore

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The tunnel data path as users run it: `stptunnel bore server` and `stptunnel bore local` (the shipped binary,
// default flags) each in a process of their own, a service process and a load-generator process, all on loopback,
// measured beside a direct connection to the same service in the same run. BORE_BIN, when it names a bore 0.5.2
// binary, adds bore's own server and client as a path; STPTUNNEL_BASE_BIN, an earlier stptunnel build, adds it as
// "stptunnel-base" (BenchmarkProcesses only). STPTUNNEL_BIN names the stptunnel binary (else it is built once
// for the run). BENCH_DELAY (e.g. 1ms) puts a link with that one-way delay between each stptunnel client and its
// server (a process of its own, role "delay"), as between a developer's machine and a bore server; bore's path is
// then left out (its client has a fixed control port). BENCH_SECRET makes every server and client authenticate.
//
// The service (this test binary in the "service" role) echoes what it reads, except on a connection whose first
// byte is 's': that one is a sink, told the length in 8 bytes (big endian), and answering one byte once it has read
// that many (no half-close, which bore 0.5.2's relay does not carry). The load generator (role "load")
// takes one command per line on its stdin and answers one line of key=value pairs.

// BenchmarkProcesses runs interleaved rounds (BENCH_ROUNDS, default 5): in each round every path is measured once
// for each figure (BENCH_FIGURES selects some, e.g. "setup,rtt"), the order of the paths rotated from round to
// round. Reported per path and figure: the median
// over the rounds, and the median over the rounds of the ratio to the direct connection of the same round.
//
//   - setup: connect, one-byte round trip, close; the median of 200 sequential connections (µs).
//   - rtt: one byte written and its echo read on an open connection; the median of 2000 (µs).
//   - bulk: 1 GiB in 64 KiB writes one way into the sink, until the sink's answer (MB/s).
//
// Run with -benchtime=1x: the rounds are the repetitions.
func BenchmarkProcesses(b *testing.B) {
	rounds := envInt("BENCH_ROUNDS", 5)
	svc := startRole(b, "service", "")
	load := startRole(b, "load", "")
	paths := []*benchPath{{name: "direct", addr: svc.addr}}
	paths = append(paths, startStptunnel(b, svc.addr))
	if base := os.Getenv("STPTUNNEL_BASE_BIN"); base != "" {
		p := startStptunnelBin(b, base, svc.addr)
		p.name = "stptunnel-base"
		paths = append(paths, p)
	}
	if bore := startBore(b, svc.addr); bore != nil {
		paths = append(paths, bore)
	}
	type figure struct {
		name, unit, cmd string
		scale           float64 // result value → unit
	}
	figures := []figure{
		{"setup", "us", "setup %s 200", 1e-3},
		{"rtt", "us", "rtt %s 2000", 1e-3},
		{"bulk", "MB/s", "bulk %s 1024", 1},
	}
	if only := os.Getenv("BENCH_FIGURES"); only != "" { // e.g. "setup,rtt"
		figures = slices.DeleteFunc(figures, func(f figure) bool { return !slices.Contains(strings.Split(only, ","), f.name) })
	}
	// values[figure][path][round]
	values := map[string]map[string][]float64{}
	for _, f := range figures {
		values[f.name] = map[string][]float64{}
	}
	for range b.N {
		for r := range rounds {
			for _, f := range figures {
				for i := range paths {
					p := paths[(i+r)%len(paths)]
					res := load.ask(b, fmt.Sprintf(f.cmd, p.addr))
					values[f.name][p.name] = append(values[f.name][p.name], res["value"]*f.scale)
				}
			}
		}
	}
	for _, f := range figures {
		direct := values[f.name]["direct"]
		for _, p := range paths {
			vs := values[f.name][p.name]
			ratios := make([]float64, len(vs))
			for i, v := range vs {
				ratios[i] = v / direct[i]
			}
			b.Run(f.name+"/"+p.name, func(b *testing.B) {
				b.ReportMetric(0, "ns/op")
				b.ReportMetric(median(vs), f.unit)
				b.ReportMetric(median(ratios), "x-direct")
				b.ReportMetric(slices.Min(ratios), "x-min")
				b.ReportMetric(slices.Max(ratios), "x-max")
			})
		}
	}
}

// BenchmarkBurst sends a burst of visitors through one tunnel: BURST_SIZES (default 1000 and 3000) connections
// opened at once, each echoing 1 KiB every 100 ms for 5 s. The server and the client are started afresh for each
// burst, with default flags, so their peak RSS (VmHWM) is the burst's. Reported per path: errors (failed dials,
// resets, wrong echoes; the target is 0), round trips completed, and the peak RSS of server and client (VmHWM,
// and RssAnon sampled every 5 ms: their own memory, without the binary's file pages).
func BenchmarkBurst(b *testing.B) {
	svc := startRole(b, "service", "")
	load := startRole(b, "load", "")
	for _, n := range envInts("BURST_SIZES", 1000, 3000) {
		for _, name := range []string{"stptunnel", "bore"} {
			b.Run(fmt.Sprintf("n=%d/%s", n, name), func(b *testing.B) {
				var errs, trips, srvRSS, cliRSS, srvAnon, cliAnon float64
				for range b.N {
					var p *benchPath
					if name == "stptunnel" {
						p = startStptunnel(b, svc.addr)
					} else if p = startBore(b, svc.addr); p == nil {
						b.Skip("BORE_BIN not set")
					}
					res := load.ask(b, fmt.Sprintf("burst %s %d 5s 100ms 1024", p.addr, n))
					errs += res["errors"]
					trips += res["roundtrips"]
					srvRSS += float64(p.server.peakRSSKB()) / 1024
					cliRSS += float64(p.client.peakRSSKB()) / 1024
					srvAnon += float64(p.server.peakAnonKB.Load()) / 1024
					cliAnon += float64(p.client.peakAnonKB.Load()) / 1024
					if res["errors"] > 0 {
						b.Logf("%s, %d visitors: %v errors; first: %s; server log: %s", name, n, res["errors"],
							load.lastNote, p.server.logSummary())
					}
					p.stop(b)
				}
				k := float64(b.N)
				b.ReportMetric(0, "ns/op")
				b.ReportMetric(errs/k, "errors")
				b.ReportMetric(trips/k, "roundtrips")
				b.ReportMetric(srvRSS/k, "server-rss-MB")
				b.ReportMetric(cliRSS/k, "client-rss-MB")
				b.ReportMetric(srvAnon/k, "server-anon-MB")
				b.ReportMetric(cliAnon/k, "client-anon-MB")
			})
		}
	}
}

// BenchmarkProcesses1000 holds 1000 connections open at once through the shipped binary's server and client (as
// BenchmarkConcurrent1000 does with the library in role processes), each echoing 1 KiB once a second for 3 s, and
// reports for both processes the peak RSS (VmHWM), the peak of their own memory (RssAnon, sampled: RSS less the
// binary's file pages) and the RSS before the load (idle); with BORE_BIN, the same for bore.
func BenchmarkProcesses1000(b *testing.B) {
	svc := startRole(b, "service", "")
	load := startRole(b, "load", "")
	for _, name := range []string{"stptunnel", "bore"} {
		b.Run(name, func(b *testing.B) {
			var errs, srvRSS, cliRSS, srvAnon, cliAnon, srvIdle, cliIdle float64
			for range b.N {
				var p *benchPath
				if name == "stptunnel" {
					p = startStptunnel(b, svc.addr)
				} else if p = startBore(b, svc.addr); p == nil {
					b.Skip("BORE_BIN not set")
				}
				srvIdle += float64(procStatusKB(p.server.cmd.Process.Pid, "VmRSS:")) / 1024
				cliIdle += float64(procStatusKB(p.client.cmd.Process.Pid, "VmRSS:")) / 1024
				res := load.ask(b, fmt.Sprintf("burst %s 1000 3s 1s 1024", p.addr))
				errs += res["errors"]
				srvRSS += float64(p.server.peakRSSKB()) / 1024
				cliRSS += float64(p.client.peakRSSKB()) / 1024
				srvAnon += float64(p.server.peakAnonKB.Load()) / 1024
				cliAnon += float64(p.client.peakAnonKB.Load()) / 1024
				p.stop(b)
			}
			k := float64(b.N)
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(errs/k, "errors")
			b.ReportMetric(srvRSS/k, "server-rss-MB")
			b.ReportMetric(cliRSS/k, "client-rss-MB")
			b.ReportMetric(srvAnon/k, "server-anon-MB")
			b.ReportMetric(cliAnon/k, "client-anon-MB")
			b.ReportMetric(srvIdle/k, "server-idle-rss-MB")
			b.ReportMetric(cliIdle/k, "client-idle-rss-MB")
		})
	}
}

// benchPath is one way to reach the service: directly, or through a tunnel's server and client processes.
type benchPath struct {
	name           string
	addr           string // where visitors connect
	server, client *extProcess
}

func (p *benchPath) stop(b *testing.B) {
	p.client.stop(b)
	p.server.stop(b)
}

// startStptunnel starts `stptunnel bore server` and `stptunnel bore local` for the service at svcAddr.
func startStptunnel(b *testing.B, svcAddr string) *benchPath {
	return startStptunnelBin(b, stptunnelBin(b), svcAddr)
}

func startStptunnelBin(b *testing.B, bin, svcAddr string) *benchPath {
	control := freePort(b)
	server := startExt(b, "stptunnel-server", bin, append([]string{"bore", "server", "--bind-addr", "127.0.0.1",
		"--control-port", strconv.Itoa(control)}, secretArgs()...)...)
	to := net.JoinHostPort("127.0.0.1", strconv.Itoa(control))
	server.waitListening(b, to)
	if d := os.Getenv("BENCH_DELAY"); d != "" { // the client reaches the server through a slow link
		to = startRole(b, "delay", to+" "+d).addr
	}
	host, port, _ := net.SplitHostPort(svcAddr)
	client := startExt(b, "stptunnel-client", bin, append([]string{"bore", "local", port, "--local-host", host,
		"--to", to}, secretArgs()...)...)
	return &benchPath{name: "stptunnel", addr: client.waitPublic(b), server: server, client: client}
}

// startBore starts bore 0.5.2's server and client (BORE_BIN), or returns nil without BORE_BIN. bore's control
// port is fixed (7835).
func startBore(b *testing.B, svcAddr string) *benchPath {
	bin := os.Getenv("BORE_BIN")
	if bin == "" || os.Getenv("BENCH_DELAY") != "" { // bore's client knows no control port to put a link before
		return nil
	}
	// 0.5.2 has no --bind-addr: it listens on every address.
	server := startExt(b, "bore-server", bin, append([]string{"server"}, secretArgs()...)...)
	server.waitListening(b, net.JoinHostPort("127.0.0.1", strconv.Itoa(DefaultControlPort)))
	host, port, _ := net.SplitHostPort(svcAddr)
	client := startExt(b, "bore-client", bin, append([]string{"local", port, "--local-host", host, "--to", "127.0.0.1"},
		secretArgs()...)...)
	return &benchPath{name: "bore", addr: client.waitPublic(b), server: server, client: client}
}

// secretArgs makes servers and clients authenticate when BENCH_SECRET is set (a challenge and its answer on every
// connection to the server).
func secretArgs() []string {
	if s := os.Getenv("BENCH_SECRET"); s != "" {
		return []string{"--secret", s}
	}
	return nil
}

var (
	stptunnelOnce sync.Once
	stptunnelPath string
)

// stptunnelBin is STPTUNNEL_BIN, or the stptunnel command built once for this run.
func stptunnelBin(b *testing.B) string {
	stptunnelOnce.Do(func() {
		if stptunnelPath = os.Getenv("STPTUNNEL_BIN"); stptunnelPath != "" {
			return
		}
		dir, err := os.MkdirTemp("", "stptunnel-bench")
		if err != nil {
			b.Fatal(err)
		}
		stptunnelPath = filepath.Join(dir, "stptunnel")
		cmd := exec.Command("go", "build", "-o", stptunnelPath, "github.com/stptunnel/stptunnel/cmd/stptunnel")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("building stptunnel: %v\n%s", err, out)
		}
	})
	return stptunnelPath
}

func freePort(b *testing.B) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return portOf(l.Addr())
}

// extProcess is a server or client process whose output (stdout and stderr) is kept in a log and scanned for
// the address it listens at.
type extProcess struct {
	name   string
	cmd    *exec.Cmd
	public chan string
	mu     sync.Mutex
	log    bytes.Buffer
	exited chan struct{}

	peakAnonKB atomic.Int64 // the largest RssAnon sampled (every 5 ms): memory of its own, not the binary's pages
}

var (
	listeningAt = regexp.MustCompile(`listening at \S*:(\d+)`)
	ansiEscape  = regexp.MustCompile("\x1b\\[[0-9;]*m")
)

func startExt(b *testing.B, name, bin string, args ...string) *extProcess {
	b.Helper()
	p := &extProcess{name: name, public: make(chan string, 1), exited: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(os.Environ(), "NO_COLOR=1")
	pr, pw := io.Pipe()
	p.cmd.Stdout, p.cmd.Stderr = pw, pw
	if err := p.cmd.Start(); err != nil {
		b.Fatalf("%s: %v", name, err)
	}
	go func() {
		p.cmd.Wait()
		pw.Close()
		close(p.exited)
	}()
	go func() {
		sc := bufio.NewScanner(pr)
		sent := false
		for sc.Scan() {
			line := ansiEscape.ReplaceAllString(sc.Text(), "")
			p.mu.Lock()
			if p.log.Len() < 1<<20 {
				p.log.WriteString(line + "\n")
			}
			p.mu.Unlock()
			if m := listeningAt.FindStringSubmatch(line); m != nil && !sent {
				p.public <- net.JoinHostPort("127.0.0.1", m[1])
				sent = true
			}
		}
		io.Copy(io.Discard, pr)
	}()
	go func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-p.exited:
				return
			case <-tick.C:
				if kb := procStatusKB(p.cmd.Process.Pid, "RssAnon:"); kb > p.peakAnonKB.Load() {
					p.peakAnonKB.Store(kb)
				}
			}
		}
	}()
	b.Cleanup(func() { p.stop(b) })
	return p
}

// waitListening waits until addr accepts connections (the server is up).
func (p *extProcess) waitListening(b *testing.B, addr string) {
	b.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s: not listening at %s after 10 s: %v\n%s", p.name, addr, err, p.logText())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitPublic waits for the client's "listening at HOST:PORT" and returns the public port on loopback.
func (p *extProcess) waitPublic(b *testing.B) string {
	b.Helper()
	select {
	case addr := <-p.public:
		return addr
	case <-p.exited:
		b.Fatalf("%s exited before listening:\n%s", p.name, p.logText())
	case <-time.After(10 * time.Second):
		b.Fatalf("%s: no public address after 10 s:\n%s", p.name, p.logText())
	}
	return ""
}

func (p *extProcess) logText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// logSummary counts the log lines by their message (slog's msg=, or the text after the level), the most
// frequent first.
func (p *extProcess) logSummary() string {
	counts := map[string]int{}
	for line := range strings.Lines(p.logText()) {
		msg := line
		if i := strings.Index(line, "msg="); i >= 0 {
			msg = line[i+4:]
			if j := strings.Index(msg, " "); j >= 0 && !strings.HasPrefix(msg, `"`) {
				msg = msg[:j]
			} else if strings.HasPrefix(msg, `"`) {
				if j := strings.Index(msg[1:], `"`); j >= 0 {
					msg = msg[:j+2]
				}
			}
		}
		counts[strings.TrimSpace(msg)]++
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return counts[b] - counts[a] })
	var sb strings.Builder
	for i, k := range keys {
		if i == 5 {
			break
		}
		fmt.Fprintf(&sb, "%d × %s; ", counts[k], k)
	}
	return sb.String()
}

// peakRSSKB is the process's peak resident set size (VmHWM), in kB.
func (p *extProcess) peakRSSKB() int64 {
	return procStatusKB(p.cmd.Process.Pid, "VmHWM:")
}

func (p *extProcess) stop(b *testing.B) {
	select {
	case <-p.exited:
		return
	default:
	}
	// SIGTERM, not SIGINT: a process started from a background job inherits an ignored SIGINT, and bore does not
	// handle signals.
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
		b.Errorf("%s did not stop on SIGTERM within 10 s", p.name)
	}
}

// procStatusKB reads one kB field of /proc/PID/status (pid 0: this process).
func procStatusKB(pid int, field string) int64 {
	path := "/proc/self/status"
	if pid != 0 {
		path = "/proc/" + strconv.Itoa(pid) + "/status"
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return -1
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb
		}
	}
	return -1
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

func envInts(name string, def ...int) []int {
	var ns []int
	for f := range strings.FieldsFuncSeq(os.Getenv(name), func(r rune) bool { return r == ',' || r == ' ' }) {
		if n, err := strconv.Atoi(f); err == nil && n > 0 {
			ns = append(ns, n)
		}
	}
	if len(ns) == 0 {
		return def
	}
	return ns
}

func median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(vs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// runDelayRole forwards each connection it accepts to target, holding every chunk for delay in each direction:
// a link with a round trip of twice delay between a tunnel's client and its server.
func runDelayRole(arg string, stdin io.Reader, stdout io.Writer) int {
	target, delayText, _ := strings.Cut(arg, " ")
	delay, err := time.ParseDuration(delayText)
	if err != nil {
		return fail(fmt.Errorf("delay role: %q: %w", arg, err))
	}
	l, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return fail(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.AcceptTCP()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				u, err := net.DialTimeout("tcp", target, 10*time.Second)
				if err != nil {
					return
				}
				defer u.Close()
				done := make(chan struct{}, 2)
				go func() { delayCopy(u.(*net.TCPConn), c, delay); done <- struct{}{} }()
				go func() { delayCopy(c, u.(*net.TCPConn), delay); done <- struct{}{} }()
				<-done
				<-done
			}()
		}
	}()
	fmt.Fprintf(stdout, "ready %s\n", l.Addr())
	io.Copy(io.Discard, stdin)
	return 0
}

// delayCopy copies src to dst, each chunk written delay after it was read, then half-closes dst.
func delayCopy(dst, src *net.TCPConn, delay time.Duration) {
	type chunk struct {
		at   time.Time
		data []byte
	}
	q := make(chan chunk, 1024)
	go func() {
		defer close(q)
		for {
			buf := make([]byte, 32<<10)
			n, err := src.Read(buf)
			if n > 0 {
				q <- chunk{time.Now().Add(delay), buf[:n]}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range q {
		time.Sleep(time.Until(c.at))
		if _, err := dst.Write(c.data); err != nil {
			dst.Close()
			src.Close()
			return
		}
	}
	dst.CloseWrite()
}

// runServiceRole serves echo connections, and sink connections (first byte 's'), on loopback until stdin closes.
func runServiceRole(stdin io.Reader, stdout io.Writer) int {
	l, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return fail(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.AcceptTCP()
			if err != nil {
				return
			}
			go serveEchoOrSink(c)
		}
	}()
	fmt.Fprintf(stdout, "ready %s\n", l.Addr())
	io.Copy(io.Discard, stdin)
	return 0
}

func serveEchoOrSink(c *net.TCPConn) {
	defer c.Close()
	first := make([]byte, 1)
	if _, err := io.ReadFull(c, first); err != nil {
		return
	}
	if first[0] != 's' {
		if _, err := c.Write(first); err != nil {
			return
		}
		io.Copy(c, c)
		c.CloseWrite()
		return
	}
	var size [8]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		return
	}
	n, err := io.CopyBuffer(io.Discard, io.LimitReader(c, int64(binary.BigEndian.Uint64(size[:]))), make([]byte, 256<<10))
	if err == nil && n == int64(binary.BigEndian.Uint64(size[:])) {
		c.Write([]byte{1})
	}
}

// runLoadRole answers the load commands read from stdin, one result line each:
//
//	setup ADDR N                        → value=median ns of connect + 1-byte round trip + close
//	rtt ADDR N                          → value=median ns of a 1-byte round trip on one connection
//	bulk ADDR MIB                       → value=MB/s of MIB MiB in 64 KiB writes into a sink, until its answer
//	burst ADDR N DURATION INTERVAL SIZE → errors=E roundtrips=R: N connections at once, each echoing SIZE bytes
//	                                      every INTERVAL for DURATION
//
// A failed command answers err=1 and a note.
func runLoadRole(stdin io.Reader, stdout io.Writer) int {
	fmt.Fprintln(stdout, "ready -")
	in := bufio.NewScanner(stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		if len(f) < 3 {
			fmt.Fprintf(stdout, "err=1 note=%q\n", "bad command "+in.Text())
			continue
		}
		out, err := loadCommand(f[0], f[1], f[2:])
		if err != nil {
			fmt.Fprintf(stdout, "err=1 note=%q\n", err.Error())
			continue
		}
		fmt.Fprintln(stdout, out)
	}
	return 0
}

func loadCommand(cmd, addr string, args []string) (string, error) {
	num := func(i int) int {
		n, _ := strconv.Atoi(args[i])
		return n
	}
	dur := func(i int) time.Duration {
		d, _ := time.ParseDuration(args[i])
		return d
	}
	switch cmd {
	case "setup":
		return measureSetup(addr, num(0))
	case "rtt":
		return measureRTT(addr, num(0))
	case "bulk":
		return measureBulk(addr, int64(num(0))<<20)
	case "burst":
		if len(args) < 4 {
			return "", fmt.Errorf("burst ADDR N DURATION INTERVAL SIZE")
		}
		return runBurst(addr, num(0), dur(1), dur(2), num(3)), nil
	}
	return "", fmt.Errorf("unknown command %q", cmd)
}

func measureSetup(addr string, n int) (string, error) {
	ts := make([]float64, 0, n)
	buf := []byte{'x'}
	for range n {
		start := time.Now()
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			return "", err
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write(buf); err == nil {
			_, err = io.ReadFull(c, buf)
		}
		c.Close()
		if err != nil {
			return "", fmt.Errorf("setup round trip: %w", err)
		}
		ts = append(ts, float64(time.Since(start).Nanoseconds()))
	}
	return fmt.Sprintf("value=%.0f", median(ts)), nil
}

func measureRTT(addr string, n int) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	buf := []byte{'x'}
	ts := make([]float64, 0, n)
	for i := range n + 100 { // the first 100 warm up
		start := time.Now()
		if _, err := c.Write(buf); err != nil {
			return "", err
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			return "", err
		}
		if i >= 100 {
			ts = append(ts, float64(time.Since(start).Nanoseconds()))
		}
	}
	return fmt.Sprintf("value=%.0f", median(ts)), nil
}

func measureBulk(addr string, size int64) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	chunk := make([]byte, 64<<10)
	header := binary.BigEndian.AppendUint64([]byte{'s'}, uint64(size))
	if _, err := c.Write(header); err != nil {
		return "", err
	}
	start := time.Now()
	for sent := int64(0); sent < size; {
		n, err := c.Write(chunk[:min(int64(len(chunk)), size-sent)])
		sent += int64(n)
		if err != nil {
			return "", err
		}
	}
	if _, err := io.ReadFull(c, chunk[:1]); err != nil {
		return "", fmt.Errorf("waiting for the sink's answer: %w", err)
	}
	return fmt.Sprintf("value=%.1f", float64(size)/time.Since(start).Seconds()/1e6), nil
}

// runBurst opens n connections at once, each then echoing size bytes every interval until d has passed since
// the burst started.
func runBurst(addr string, n int, d, interval time.Duration, size int) string {
	var (
		wg             sync.WaitGroup
		errs, trips    atomic.Int64
		firstErr       atomic.Pointer[string]
		dialed, failed atomic.Int64
	)
	note := func(err error) {
		errs.Add(1)
		s := err.Error()
		firstErr.CompareAndSwap(nil, &s)
	}
	start := time.Now()
	end := start.Add(d)
	for i := range n {
		wg.Go(func() {
			c, err := net.DialTimeout("tcp", addr, 10*time.Second)
			if err != nil {
				failed.Add(1)
				note(fmt.Errorf("dial: %w", err))
				return
			}
			dialed.Add(1)
			defer c.Close()
			c.SetDeadline(end.Add(20 * time.Second))
			payload := bytes.Repeat([]byte(fmt.Sprintf("%07d ", i)), size/8+1)[:size]
			got := make([]byte, size)
			for next := time.Now(); next.Before(end); next = next.Add(interval) {
				time.Sleep(time.Until(next))
				if _, err := c.Write(payload); err != nil {
					note(fmt.Errorf("write: %w", err))
					return
				}
				if _, err := io.ReadFull(c, got); err != nil {
					note(fmt.Errorf("read after %d round trips: %w", trips.Load(), err))
					return
				}
				if !bytes.Equal(got, payload) {
					note(fmt.Errorf("wrong echo"))
					return
				}
				trips.Add(1)
			}
		})
	}
	wg.Wait()
	first := ""
	if p := firstErr.Load(); p != nil {
		first = *p
	}
	return fmt.Sprintf("errors=%d roundtrips=%d dial-failures=%d elapsed-ms=%d note=%q", errs.Load(), trips.Load(),
		failed.Load(), time.Since(start).Milliseconds(), first)
}
