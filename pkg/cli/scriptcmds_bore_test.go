package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"github.com/tidwall/gjson"

	"github.com/stptunnel/stptunnel/pkg/bore"
	"github.com/stptunnel/stptunnel/pkg/tunnel/tunneltest"
)

// boreStandInName is the name under which the test binary acts as the external bore binary (see borestandin).
const boreStandInName = "bore"

func init() {
	// Run through a link named "bore", this test binary is a bore 0.5 stand-in for `--engine bore`: a real bore
	// client (pkg/bore) with bore's command line and coloured log lines. It must decide before TestMain runs.
	if filepath.Base(os.Args[0]) == boreStandInName {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := tunneltest.BoreStandIn(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	registerScriptCmds(map[string]scriptCmd{
		"boreserver":         cmdBoreServer,
		"boreserver-restart": cmdBoreServerRestart,
		"boreserver-stop":    cmdBoreServerStop,
		"boreserver-stats":   cmdBoreServerStats,
		"borestandin":        cmdBoreStandIn,
		"tcpecho":            cmdTCPEcho,
		"freeport":           cmdFreePort,
		"dialecho":           cmdDialEcho,
		"waitfile":           cmdWaitFile,
		"waitline":           cmdWaitLine,
		"jsonget":            cmdJSONGet,
	})
}

// scriptWait bounds every wait of these commands: long enough for a loaded machine, short enough to fail.
const scriptWait = 60 * time.Second

// boreServers holds each script's embedded bore servers, by the variable that names their address.
var boreServers = struct {
	sync.Mutex
	m map[*testscript.TestScript]map[string]*scriptBoreServer
}{m: map[*testscript.TestScript]map[string]*scriptBoreServer{}}

type scriptBoreServer struct {
	secret  string
	tunnels string // where the public ports listen, when not on the control port's 127.0.0.1
	port    int
	srv     *bore.Server
}

func (s *scriptBoreServer) start() error {
	srv, err := bore.NewServer(bore.ServerConfig{BindAddr: "127.0.0.1", BindTunnels: s.tunnels, ControlPort: s.port, Secret: s.secret})
	if err != nil {
		return err
	}
	if err := srv.Start(context.Background()); err != nil {
		return err
	}
	s.srv, s.port = srv, srv.Addr().Port
	return nil
}

func (s *scriptBoreServer) stop() {
	if s.srv != nil {
		s.srv.Close()
		s.srv = nil
	}
}

// serverVar is the variable that names a script's bore server: the command's only argument, BORE_SERVER when none.
func serverVar(ts *testscript.TestScript, cmd string, args []string) string {
	switch len(args) {
	case 0:
		return envBoreSrv
	case 1:
		return args[0]
	}
	ts.Fatalf("usage: %s [VAR]", cmd)
	return ""
}

func scriptServer(ts *testscript.TestScript, name string) *scriptBoreServer {
	boreServers.Lock()
	defer boreServers.Unlock()
	s := boreServers.m[ts][name]
	if s == nil {
		ts.Fatalf("no boreserver %s in this script", name)
	}
	return s
}

// cmdBoreServer starts a bore server on 127.0.0.1 with a random control port and exports its address as VAR
// (default BORE_SERVER): `boreserver [--secret S] [--tunnels ADDR] [VAR]`. A script may run several, each under
// its own VAR. --tunnels puts the public ports on another loopback address (such as 127.0.0.2), the "private
// address" of a server inside the functions' VPC.
func cmdBoreServer(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! boreserver")
	}
	s := &scriptBoreServer{}
	for len(args) >= 2 && (args[0] == "--secret" || args[0] == "--tunnels") {
		if args[0] == "--secret" {
			s.secret = args[1]
		} else {
			s.tunnels = args[1]
		}
		args = args[2:]
	}
	name := serverVar(ts, "boreserver [--secret S] [--tunnels ADDR]", args)
	ts.Check(s.start())
	boreServers.Lock()
	if boreServers.m[ts] == nil {
		boreServers.m[ts] = map[string]*scriptBoreServer{}
		ts.Defer(func() {
			boreServers.Lock()
			servers := boreServers.m[ts]
			delete(boreServers.m, ts)
			boreServers.Unlock()
			for _, s := range servers {
				s.stop()
			}
		})
	}
	if old := boreServers.m[ts][name]; old != nil {
		old.stop()
	}
	boreServers.m[ts][name] = s
	boreServers.Unlock()
	ts.Setenv(name, "127.0.0.1:"+strconv.Itoa(s.port))
}

// cmdBoreServerRestart stops a server and starts a new one on the same control port: `boreserver-restart [VAR]`.
func cmdBoreServerRestart(ts *testscript.TestScript, neg bool, args []string) {
	s := scriptServer(ts, serverVar(ts, "boreserver-restart", args))
	s.stop()
	ts.Check(s.start())
}

// cmdBoreServerStop stops a server; its control port then refuses connections: `boreserver-stop [VAR]`.
func cmdBoreServerStop(ts *testscript.TestScript, neg bool, args []string) {
	scriptServer(ts, serverVar(ts, "boreserver-stop", args)).stop()
}

// cmdBoreServerStats prints a server's counters, one `name value` a line: `boreserver-stats [VAR]`.
func cmdBoreServerStats(ts *testscript.TestScript, neg bool, args []string) {
	s := scriptServer(ts, serverVar(ts, "boreserver-stats", args))
	if s.srv == nil {
		ts.Fatalf("boreserver-stats: the server is stopped")
	}
	st := s.srv.Stats()
	fmt.Fprintf(ts.Stdout(), "tunnels_open %d\ntunnels_total %d\nconnections_forwarded %d\nauth_failures %d\n",
		st.TunnelsOpen, st.TunnelsTotal, st.ConnectionsForwarded, st.AuthFailures)
}

// cmdBoreStandIn makes $WORK/bin/bore, a link to this test binary, which then acts as bore (see init), and
// exports its path as BORE_STANDIN.
func cmdBoreStandIn(ts *testscript.TestScript, neg bool, args []string) {
	linkSelf(ts, boreStandInName, "BORE_STANDIN")
}

// cmdTCPEcho starts a TCP echo service on 127.0.0.1 (on PORT when given, else a random one) and exports NAME_ADDR
// and NAME_PORT: `tcpecho NAME [PORT]`.
func cmdTCPEcho(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 && len(args) != 2 {
		ts.Fatalf("usage: tcpecho NAME [PORT]")
	}
	port := "0"
	if len(args) == 2 {
		port = args[1]
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+port)
	ts.Check(err)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(scriptWait))
				io.Copy(c, c)
			})
		}
	})
	ts.Defer(func() { ln.Close(); wg.Wait() })
	ts.Setenv(args[0]+"_ADDR", ln.Addr().String())
	ts.Setenv(args[0]+"_PORT", strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
}

// cmdFreePort exports NAME_ADDR and NAME_PORT of a loopback port nothing listens on: `freeport NAME`.
func cmdFreePort(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: freeport NAME")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	addr := ln.Addr().(*net.TCPAddr)
	ln.Close()
	ts.Setenv(args[0]+"_ADDR", addr.String())
	ts.Setenv(args[0]+"_PORT", strconv.Itoa(addr.Port))
}

// cmdDialEcho sends bytes to ADDR and checks they come back: `[!] dialecho ADDR`. With !, the address must
// refuse the connection or fail to echo.
func cmdDialEcho(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: dialecho ADDR")
	}
	err := dialEcho(args[0])
	switch {
	case err != nil && !neg:
		ts.Fatalf("dialecho %s: %v", args[0], err)
	case err == nil && neg:
		ts.Fatalf("dialecho %s: the echo came back", args[0])
	}
}

func dialEcho(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(15 * time.Second))
	msg := []byte("ping through the tunnel\n")
	if _, err := c.Write(msg); err != nil {
		return err
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		return fmt.Errorf("reading the echo: %w", err)
	}
	if !bytes.Equal(got, msg) {
		return fmt.Errorf("echo %q, want %q", got, msg)
	}
	return nil
}

// cmdWaitFile waits until FILE exists and holds a complete JSON document or line: `waitfile FILE`.
func cmdWaitFile(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: waitfile FILE")
	}
	waitContent(ts, args[0], "a complete line", func(b []byte) bool { return bytes.HasSuffix(b, []byte("\n")) })
}

// cmdWaitLine waits until a line of FILE matches REGEXP, and exports the first group of the match as NAME when
// given: `waitline FILE REGEXP [NAME]`.
func cmdWaitLine(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 && len(args) != 3 {
		ts.Fatalf("usage: waitline FILE REGEXP [NAME]")
	}
	re, err := regexp.Compile("(?m)" + args[1])
	ts.Check(err)
	var match [][]byte
	waitContent(ts, args[0], "a line matching "+args[1], func(b []byte) bool {
		match = re.FindSubmatch(b)
		return match != nil
	})
	if len(args) == 3 {
		if len(match) < 2 {
			ts.Fatalf("waitline: %s has no group to export as %s", args[1], args[2])
		}
		ts.Setenv(args[2], string(match[1]))
	}
}

// waitContent polls FILE (written by a background process) until ok accepts its content.
func waitContent(ts *testscript.TestScript, file, what string, ok func([]byte) bool) {
	path := ts.MkAbs(file)
	deadline := time.Now().Add(scriptWait)
	for {
		b, err := os.ReadFile(path)
		if err == nil && ok(b) {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("%s has no %s after %v; it holds:\n%s", file, what, scriptWait, strings.TrimSpace(string(b)))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cmdJSONGet exports the value at a gjson PATH of a JSON FILE as NAME: `jsonget FILE PATH NAME`.
func cmdJSONGet(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 3 {
		ts.Fatalf("usage: jsonget FILE PATH NAME")
	}
	b, err := os.ReadFile(ts.MkAbs(args[0]))
	ts.Check(err)
	v := gjson.GetBytes(b, args[1])
	if !v.Exists() {
		ts.Fatalf("%s has nothing at %s", args[0], args[1])
	}
	ts.Setenv(args[2], v.String())
}
