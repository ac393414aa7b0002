package connstr

import (
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"
)

// Match is one local address found in a value.
type Match struct {
	// Start and End delimit the host[:port] text of the entry (IPv6
	// brackets included). In a key=value DSN, where the port is a key of its
	// own, they delimit the host value.
	Start, End int
	// Addr is the entry's address; its port is the default when the entry
	// has none.
	Addr HostPort
}

// Unsupported is the error Rewrite returns (as *Unsupported) for a value the
// tunnel cannot carry: a unix socket, or TLS that verifies the server
// certificate against the local hostname the rewrite would change.
type Unsupported struct{ Reason string }

func (e *Unsupported) Error() string { return "cannot go through a tunnel: " + e.Reason }

// Find returns every local address in value (see IsLocalHost), in the order
// they appear. defaultPort is the port of an entry without one whose syntax
// implies none (a key=value DSN, a URL of an unknown scheme, an http(s)
// DynamoDB endpoint); known URL schemes and tcp(...) use their own default.
// A bare host without a port ("localhost" alone) is not an entry: it cannot
// be told from a word, and a Stacktape _HOST/_PORT pair is the caller's to
// rewrite (public.Host into _HOST, public.Port into _PORT).
func Find(value string, defaultPort int) []Match {
	var found []Match
	for _, e := range scan(value, defaultPort).entries {
		if IsLocalHost(e.addr.Host) {
			found = append(found, e.match())
		}
	}
	return found
}

// References reports whether value has an entry at local. Every name of this
// machine counts as the same host: with local "localhost:5432", an entry
// "127.0.0.1:5432" matches, "localhost:5433" does not.
func References(value string, local HostPort, defaultPort int) bool {
	for _, e := range scan(value, defaultPort).entries {
		if sameAddr(e.addr, local) {
			return true
		}
	}
	return false
}

// Rewrite replaces the host and port of every entry of value at local (as in
// References) with public, and returns the new value and the number of
// entries rewritten. Every other byte of value is kept. An entry without a
// port gets public's port added. local need not be a local host, so that
// Rewrite(after, public, local, ...) undoes a rewrite.
//
// When entries match but the value verifies TLS against the hostname, or
// when nothing matches and the value uses a unix socket, it returns value
// unchanged and an *Unsupported error.
func Rewrite(value string, local, public HostPort, defaultPort int) (string, int, error) {
	if local.Host == "" || local.Port < 1 || local.Port > 65535 {
		return value, 0, fmt.Errorf("rewriting: local address %q is not HOST:PORT", local.String())
	}
	if err := checkHost(public.Host); err != nil || public.Port < 1 || public.Port > 65535 {
		return value, 0, fmt.Errorf("rewriting: public address %q is not HOST:PORT", public.String())
	}
	sc := scan(value, defaultPort)
	var hits []entry
	for _, e := range sc.entries {
		if sameAddr(e.addr, local) {
			hits = append(hits, e)
		}
	}
	if len(hits) == 0 {
		if sc.socket != "" {
			return value, 0, &Unsupported{Reason: sc.socket}
		}
		return value, 0, nil
	}
	if reason := cannotCarry(value, sc, hits, local); reason != "" {
		return value, 0, &Unsupported{Reason: reason}
	}
	var edits []edit
	for _, e := range hits {
		edits = append(edits, e.rewrite(public)...)
	}
	out, err := applyEdits(value, edits)
	if err != nil {
		return value, 0, err
	}
	return out, len(hits), nil
}

// cannotCarry says why the entries hits of value, those at local, cannot be
// pointed at a tunnel, or "" when they can.
func cannotCarry(value string, sc scanned, hits []entry, local HostPort) string {
	for _, e := range hits {
		switch e.scheme {
		case "rediss", "https":
			return e.scheme + ":// verifies the server certificate against the local hostname, which the tunnel's public host cannot present"
		}
		if e.form == formDSN && sc.hostaddr {
			return "the key=value DSN pins the address with hostaddr; use host instead"
		}
	}
	if reason := tlsVerifyReason(value); reason != "" {
		return reason
	}
	for _, e := range sc.entries {
		if e.sharedPort && !sameAddr(e.addr, local) {
			return "the key=value DSN's hosts share one port key and only some of them are tunnelled; give each host its own port"
		}
	}
	return ""
}

// edit replaces value[start:end] with text.
type edit struct {
	start, end int
	text       string
}

// rewrite returns the edits pointing e at public.
func (e entry) rewrite(public HostPort) []edit {
	host := public.Host
	if isIP(host) && strings.Contains(host, ":") && (e.form != formDSN || e.bracketed) {
		host = "[" + host + "]"
	}
	outer := e.host
	if e.bracketed {
		outer = span{outer.start - 1, outer.end + 1}
	}
	port := strconv.Itoa(public.Port)
	edits := []edit{{outer.start, outer.end, host}}
	switch {
	case e.port.start >= 0:
		edits = append(edits, edit{e.port.start, e.port.end, port})
	case e.form == formDSN:
		edits = append(edits, edit{e.insertAt, e.insertAt, e.dsnSep + port})
	default:
		edits = append(edits, edit{e.insertAt, e.insertAt, ":" + port})
	}
	return edits
}

// applyEdits applies non-overlapping edits to v; identical edits (a port
// shared by several hosts) apply once.
func applyEdits(v string, edits []edit) (string, error) {
	sort.SliceStable(edits, func(i, j int) bool {
		if edits[i].start != edits[j].start {
			return edits[i].start < edits[j].start
		}
		return edits[i].end < edits[j].end
	})
	var b strings.Builder
	last := 0
	for i, ed := range edits {
		if i > 0 && ed == edits[i-1] {
			continue
		}
		if ed.start < last {
			return "", fmt.Errorf("rewriting: entries overlap at byte %d", ed.start)
		}
		b.WriteString(v[last:ed.start])
		b.WriteString(ed.text)
		last = ed.end
	}
	b.WriteString(v[last:])
	return b.String(), nil
}

func isIP(host string) bool {
	_, err := netip.ParseAddr(host)
	return err == nil
}

// Addresses returns the host[:port] text of every entry in value, local or
// not, as written (no default port added), in the order they appear: what a
// value names, for a message ("replace db.example.com:5432 with the tunnel").
// It holds no credentials when value holds none: redact value first.
func Addresses(value string) []string {
	var out []string
	for _, e := range scan(value, 0).entries {
		m := e.match()
		text := value[m.Start:m.End]
		if e.form == formDSN && e.explicitPort() {
			text = net.JoinHostPort(value[e.host.start:e.host.end], value[e.port.start:e.port.end])
		}
		out = append(out, text)
	}
	return out
}
