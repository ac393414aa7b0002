package cli

import (
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/stptunnel/stptunnel/pkg/connstr"
)

// ui writes the human side of stptunnel: progress and messages on stderr, in stptunnel's style
//
//	✓ Starting tunnel: postgresDb → bore.pub:54321
//	! Skipping worker: runs in a VPC without a NAT gateway
//	i Restoring Lambda env vars...
//
// Every message passes through redaction (passwords in connection strings, and every secret value registered
// with addSecret) before it is written, so no command can leak one by formatting an error. Colour is used only
// when the writer is a terminal and NO_COLOR / --no-color are not set.
type ui struct {
	mu      sync.Mutex
	w       io.Writer
	color   bool
	quiet   bool
	gh      *github
	secrets []string
	// live: w is a terminal, where status lines (setStatus) stay below the messages and are redrawn in place.
	live     bool
	status   []string            // what is drawn now
	sections map[string][]string // the status lines, by section
}

// Status sections, drawn in this order below the messages.
const (
	statusTunnels = "tunnels" // one line per tunnel: what it carries
	statusWaits   = "waits"   // what a Lambda step still waits for
)

var statusOrder = []string{statusTunnels, statusWaits}

const (
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
	ansiBlue   = "\x1b[36m"
	ansiRed    = "\x1b[31m"
	ansiReset  = "\x1b[0m"
)

// addSecret registers a value that must never be printed. Under GitHub Actions it is masked first.
func (u *ui) addSecret(values ...string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, v := range values {
		u.gh.mask(v)
		// A multi-line value is masked line by line, as the runner does.
		for _, line := range strings.Split(v, "\n") {
			if len(line) < 3 { // masking one- or two-character values would mangle every message
				continue
			}
			u.secrets = append(u.secrets, line)
		}
	}
}

// redact removes passwords and registered secrets from s.
func (u *ui) redact(s string) string {
	s = connstr.Redact(s)
	for _, v := range u.secrets {
		s = strings.ReplaceAll(s, v, "****")
	}
	return s
}

func (u *ui) line(prefix, colour, format string, args ...any) {
	msg := u.redact(fmt.Sprintf(format, args...))
	u.mu.Lock()
	defer u.mu.Unlock()
	u.clearStatus()
	if u.color {
		fmt.Fprintf(u.w, "%s%s%s %s\n", colour, prefix, ansiReset, msg)
	} else {
		fmt.Fprintf(u.w, "%s %s\n", prefix, msg)
	}
	u.drawStatus()
}

// setStatus replaces a section of the status lines shown below the messages on a terminal (no lines clears it).
// Off a terminal it does nothing: a log has no place for lines that change.
func (u *ui) setStatus(section string, lines ...string) {
	if !u.live || u.quiet {
		return
	}
	for i, l := range lines {
		lines[i] = u.redact(l)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.sections == nil {
		u.sections = map[string][]string{}
	}
	u.sections[section] = lines
	u.clearStatus()
	u.status = nil
	for _, name := range statusOrder {
		u.status = append(u.status, u.sections[name]...)
	}
	u.drawStatus()
}

// clearStatus erases the status lines (the cursor is on the line below them); u.mu is held.
func (u *ui) clearStatus() {
	if n := len(u.status); n > 0 {
		fmt.Fprintf(u.w, "\x1b[%dA\r\x1b[J", n)
	}
}

// drawStatus writes the status lines below the messages; u.mu is held.
func (u *ui) drawStatus() {
	for _, l := range u.status {
		if u.color {
			fmt.Fprintf(u.w, "%s%s%s\n", ansiBlue, l, ansiReset)
		} else {
			fmt.Fprintf(u.w, "%s\n", l)
		}
	}
}

// ok reports a step that succeeded: "✓ ...".
func (u *ui) ok(format string, args ...any) {
	if !u.quiet {
		u.line("✓", ansiGreen, format, args...)
	}
}

// info reports progress: "i ...".
func (u *ui) info(format string, args ...any) {
	if !u.quiet {
		u.line("i", ansiBlue, format, args...)
	}
}

// warn reports something the user should know: "! ...". Shown even with --quiet.
func (u *ui) warn(format string, args ...any) {
	u.line("!", ansiYellow, format, args...)
}

// fail reports the error that ends a command: "✗ ...". Shown even with --quiet.
func (u *ui) fail(format string, args ...any) {
	u.line("✗", ansiRed, format, args...)
}

// plain writes a line without prefix (tables, help-like output). Redacted like every other line.
func (u *ui) plain(format string, args ...any) {
	msg := u.redact(fmt.Sprintf(format, args...))
	u.mu.Lock()
	defer u.mu.Unlock()
	u.clearStatus()
	fmt.Fprintln(u.w, msg)
	u.drawStatus()
}
