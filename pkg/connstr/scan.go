package connstr

import (
	"net/netip"
	"sort"
	"strings"
)

// form is the syntax an entry was found in; it decides how a rewritten host
// and an added port are written.
type form int

const (
	formURL   form = iota // scheme://[userinfo@]host[:port][,host[:port]...]
	formMySQL             // Go MySQL DSN: [user[:pass]@]tcp(host[:port])/db
	formDSN               // key=value DSN: host=... port=...
	formBare              // HOST:PORT anywhere in the text
)

// span is a byte range [start, end) of a value.
type span struct{ start, end int }

var noSpan = span{-1, -1}

// entry is one host[:port] found in a value.
type entry struct {
	form   form
	scheme string // lower-cased URL scheme; "" for other forms
	host   span   // host text, without IPv6 brackets
	// bracketed: "[" and "]" surround host.
	bracketed bool
	// port is the port text. start == -1: the entry has no port text and a
	// port is inserted at insertAt; start == end: an empty port ("host:").
	port     span
	insertAt int
	addr     HostPort // port is the default when none is written
	// sharedPort: in a multi-host DSN, one port key (or none) serves every
	// host, so it cannot change for one host alone.
	sharedPort bool
	dsnSep     string // DSN only: separator and key used to add a port
}

func (e entry) explicitPort() bool { return e.port.end > e.port.start }

// match is the public view of an entry: the host[:port] text, or the host
// value alone in a key=value DSN.
func (e entry) match() Match {
	end := e.host.end
	if e.form != formDSN {
		if e.port.start >= 0 {
			end = e.port.end
		} else if e.bracketed {
			end++
		}
	}
	start := e.host.start
	if e.bracketed && e.form != formDSN {
		start--
	}
	return Match{Start: start, End: end, Addr: e.addr}
}

// scanned is everything scan learnt about a value.
type scanned struct {
	entries []entry
	// socket says why the value connects through a unix socket, if it does.
	socket string
	// hostaddr: a libpq hostaddr key pins the IP, so changing host is not
	// enough to redirect the connection.
	hostaddr bool
}

// scan finds every address entry in v, whatever its host. defaultPort is the
// port of entries without one whose form does not imply a default.
func scan(v string, defaultPort int) scanned {
	var res scanned
	var covered []span
	scanURLs(v, defaultPort, &res, &covered)
	scanMySQL(v, &res, &covered)
	scanDSN(v, defaultPort, &res)
	scanBare(v, &res, covered)
	sort.SliceStable(res.entries, func(i, j int) bool {
		return res.entries[i].host.start < res.entries[j].host.start
	})
	return res
}

func isLetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isAlnum(c byte) bool  { return isLetter(c) || isDigit(c) }

func isSchemeChar(c byte) bool { return isAlnum(c) || c == '+' || c == '-' || c == '.' }

func isHostChar(c byte) bool { return isAlnum(c) || c == '.' || c == '-' || c == '_' }

// isAuthorityEnd reports whether c ends a URL authority, also where the URL
// is embedded in a larger text (JSON, a log line, a JDBC ";key=value" tail).
func isAuthorityEnd(c byte) bool {
	switch c {
	case '/', '?', '#', ';', '\'', '\\', '{', '}', '|', '^', '(', ')':
		return true
	}
	return isTokenEnd(c)
}

// isTokenEnd reports whether c ends a connection string embedded in text.
func isTokenEnd(c byte) bool {
	switch c {
	case ' ', '\t', '\r', '\n', '"', '<', '>', '`':
		return true
	}
	return false
}

// urlAt locates the URL whose "://" is at v[sep:]. ok is false when no
// scheme precedes it. The scheme is returned lower-cased; for JDBC's
// "jdbc:postgresql://" it is "postgresql".
func urlAt(v string, sep int) (scheme string, authority span, ok bool) {
	start := sep
	for start > 0 && isSchemeChar(v[start-1]) {
		start--
	}
	for start < sep && !isLetter(v[start]) {
		start++
	}
	if start == sep {
		return "", span{}, false
	}
	end := sep + 3
	for end < len(v) && !isAuthorityEnd(v[end]) {
		end++
	}
	return strings.ToLower(v[start:sep]), span{sep + 3, end}, true
}

// schemeDefaultPort is the port a URL of scheme means when it has none.
// http and https (a DynamoDB endpoint) take the caller's default when it has
// one, since DynamoDB Local listens on 8000, as CONTRACT.md §4 says.
func schemeDefaultPort(scheme string, fallback int) int {
	switch scheme {
	case "postgres", "postgresql":
		return 5432
	case "mysql", "mariadb":
		return 3306
	case "redis", "rediss":
		return 6379
	case "http":
		if fallback == 0 {
			return 80
		}
	case "https":
		if fallback == 0 {
			return 443
		}
	}
	return fallback
}

func isSocketScheme(scheme string) bool {
	return scheme == "unix" || strings.HasSuffix(scheme, "+unix") ||
		strings.HasSuffix(scheme, "+socket") || strings.HasSuffix(scheme, "-socket")
}

func isPostgresScheme(scheme string) bool { return scheme == "postgres" || scheme == "postgresql" }

func scanURLs(v string, defaultPort int, res *scanned, covered *[]span) {
	for i := 0; ; {
		k := strings.Index(v[i:], "://")
		if k < 0 {
			return
		}
		sep := i + k
		i = sep + 3
		scheme, auth, ok := urlAt(v, sep)
		if !ok {
			continue
		}
		i = auth.end
		*covered = append(*covered, auth)
		hosts := auth.start
		if at := strings.LastIndexByte(v[auth.start:auth.end], '@'); at >= 0 {
			hosts = auth.start + at + 1
		}
		if isSocketScheme(scheme) {
			res.socket = scheme + ":// is a unix socket"
			continue
		}
		if isPostgresScheme(scheme) && postgresURLSocket(v, hosts, auth.end) {
			res.socket = "the postgres URL connects through a unix socket (no host, or a host that is a path)"
			continue
		}
		if hosts == auth.end {
			continue
		}
		def := schemeDefaultPort(scheme, defaultPort)
		for _, h := range splitSpan(v, span{hosts, auth.end}, ',') {
			if ent, ok := hostEntry(v, h.start, h.end, def); ok {
				ent.form, ent.scheme = formURL, scheme
				res.entries = append(res.entries, ent)
			}
		}
	}
}

// postgresURLSocket reports whether a postgres URL whose host list is
// v[hosts:end] connects through a unix socket: libpq does when the host is
// empty, percent-encodes a path, or a "host" query parameter is a path.
func postgresURLSocket(v string, hosts, end int) bool {
	if hosts == end || strings.HasPrefix(strings.ToLower(v[hosts:end]), "%2f") {
		return true
	}
	tokenEnd := end
	for tokenEnd < len(v) && !isTokenEnd(v[tokenEnd]) {
		tokenEnd++
	}
	q := strings.IndexByte(v[end:tokenEnd], '?')
	if q < 0 {
		return false
	}
	query := v[end+q+1 : tokenEnd]
	if f := strings.IndexByte(query, '#'); f >= 0 {
		query = query[:f]
	}
	for _, kv := range strings.Split(query, "&") {
		key, val, _ := strings.Cut(kv, "=")
		if strings.EqualFold(key, "host") && (strings.HasPrefix(val, "/") || strings.HasPrefix(strings.ToLower(val), "%2f")) {
			return true
		}
	}
	return false
}

// hostEntry parses v[s:e] as host, host:port, [ipv6] or [ipv6]:port.
func hostEntry(v string, s, e, defaultPort int) (entry, bool) {
	ent := entry{port: noSpan}
	text := v[s:e]
	if strings.HasPrefix(text, "[") {
		closing := strings.IndexByte(text, ']')
		if closing < 0 {
			return entry{}, false
		}
		if _, err := netip.ParseAddr(text[1:closing]); err != nil {
			return entry{}, false
		}
		ent.host, ent.bracketed = span{s + 1, s + closing}, true
		ent.insertAt = s + closing + 1
		switch rest := text[closing+1:]; {
		case rest == "":
		case rest[0] == ':':
			ent.port = span{s + closing + 2, e}
		default:
			return entry{}, false
		}
	} else {
		ent.host, ent.insertAt = span{s, e}, e
		if c := strings.LastIndexByte(text, ':'); c >= 0 {
			ent.host, ent.insertAt = span{s, s + c}, s+c
			ent.port = span{s + c + 1, e}
		}
		if strings.ContainsAny(v[ent.host.start:ent.host.end], ":[]") {
			return entry{}, false
		}
	}
	if ent.host.start == ent.host.end {
		return entry{}, false
	}
	ent.addr = HostPort{Host: v[ent.host.start:ent.host.end], Port: defaultPort}
	if ent.explicitPort() {
		p, err := parsePort(v[ent.port.start:ent.port.end])
		if err != nil {
			return entry{}, false
		}
		ent.addr.Port = p
	}
	return ent, true
}

// Longest texts looked at for a bracketed IPv6 host and a MySQL address.
const (
	maxIPv6Len      = 64
	maxMySQLAddrLen = 300
)

// mysqlProtocols are the Go MySQL DSN network names that carry an address.
var mysqlProtocols = []string{"tcp", "tcp4", "tcp6", "unix"}

// scanMySQL finds Go MySQL DSN addresses: "[user[:pass]@]tcp(addr)/db". The
// closing ")/" is required, as the driver requires the slash.
func scanMySQL(v string, res *scanned, covered *[]span) {
	for i := 0; ; {
		k := strings.IndexByte(v[i:], '(')
		if k < 0 {
			return
		}
		open := i + k
		i = open + 1
		proto := ""
		for _, p := range mysqlProtocols {
			if strings.HasSuffix(v[:open], p) {
				proto = p
			}
		}
		before := open - len(proto)
		if proto == "" || (before > 0 && v[before-1] != '@' && !isTokenEnd(v[before-1]) && v[before-1] != '=') {
			continue
		}
		// Bounded, so that a text full of '(' stays linear to scan.
		closing := strings.IndexByte(v[open:min(len(v), open+maxMySQLAddrLen)], ')')
		if closing < 0 || open+closing+1 >= len(v) || v[open+closing+1] != '/' {
			continue
		}
		closing += open
		i = closing + 1
		if proto == "unix" {
			res.socket = "the MySQL DSN connects through unix(...), a unix socket"
			continue
		}
		*covered = append(*covered, span{open + 1, closing})
		if ent, ok := hostEntry(v, open+1, closing, DefaultPort(TypeMySQL)); ok {
			ent.form = formMySQL
			res.entries = append(res.entries, ent)
		}
	}
}

// scanBare finds HOST:PORT tokens outside the spans other forms covered.
func scanBare(v string, res *scanned, covered []span) {
	inCovered := func(s span) bool {
		for _, c := range covered {
			if s.start < c.end && c.start < s.end {
				return true
			}
		}
		return false
	}
	for i := 0; i < len(v); i++ {
		if i > 0 && (isHostChar(v[i-1]) || strings.IndexByte(":[]%", v[i-1]) >= 0) {
			continue
		}
		var hostEnd int // end of the host text including any ']'
		switch {
		case v[i] == '[':
			c := strings.IndexByte(v[i:min(len(v), i+maxIPv6Len)], ']')
			if c < 0 {
				continue
			}
			hostEnd = i + c + 1
		case isAlnum(v[i]):
			hostEnd = i
			for hostEnd < len(v) && isHostChar(v[hostEnd]) {
				hostEnd++
			}
		default:
			continue
		}
		if hostEnd >= len(v) || v[hostEnd] != ':' {
			continue
		}
		end := hostEnd + 1
		for end < len(v) && isDigit(v[end]) {
			end++
		}
		if end == hostEnd+1 || !bareTokenEnds(v, end) || inCovered(span{i, end}) {
			continue
		}
		if ent, ok := hostEntry(v, i, end, 0); ok {
			ent.form = formBare
			res.entries = append(res.entries, ent)
			i = end - 1
		}
	}
}

// bareTokenEnds reports whether a HOST:PORT token may end at v[end]: not in
// the middle of a word, a longer number or a dotted name ("a:1.5" is not one).
func bareTokenEnds(v string, end int) bool {
	if end == len(v) {
		return true
	}
	c := v[end]
	if isAlnum(c) || c == '_' || c == ':' {
		return false
	}
	return c != '.' || end+1 == len(v) || !isAlnum(v[end+1])
}
