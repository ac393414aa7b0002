package connstr

import "strings"

// dsnPair is one key=value of a key=value DSN.
type dsnPair struct {
	key   string // lower-cased
	name  string // the key as written
	val   span   // the value without its quotes
	token span   // the value as written, quotes included
}

func isSpace(c byte) bool   { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }
func isKeyChar(c byte) bool { return isAlnum(c) || c == '_' || c == '-' || c == '.' }

// parseDSN parses v as a whole as a key=value DSN: libpq's
// "host=localhost port=5432" (values may be single-quoted, with backslash
// escapes) or ADO.NET's "Host=localhost;Port=5432" (keys may hold spaces,
// as in "Data Source"). ok is false when v is not one.
func parseDSN(v string) (pairs []dsnPair, semicolons bool, ok bool) {
	i := 0
	for {
		for i < len(v) && (isSpace(v[i]) || v[i] == ';') {
			semicolons = semicolons || v[i] == ';'
			i++
		}
		if i == len(v) {
			return pairs, semicolons, len(pairs) > 0
		}
		var p dsnPair
		if p.name, i = dsnKey(v, i); p.name == "" {
			return nil, false, false
		}
		p.key = strings.ToLower(p.name)
		for i < len(v) && isSpace(v[i]) {
			i++
		}
		if i < len(v) && (v[i] == '\'' || v[i] == '"') {
			end := quotedEnd(v, i)
			if end < 0 {
				return nil, false, false
			}
			p.val, p.token = span{i + 1, end - 1}, span{i, end}
			i = end
			if i < len(v) && !isSpace(v[i]) && v[i] != ';' {
				return nil, false, false
			}
		} else {
			start := i
			for i < len(v) && !isSpace(v[i]) && v[i] != ';' {
				if v[i] == '\\' {
					i++
				}
				i++
			}
			i = min(i, len(v))
			p.val, p.token = span{start, i}, span{start, i}
		}
		pairs = append(pairs, p)
	}
}

// dsnKey reads a key and its '=' at v[i:]: words of key characters joined by
// single spaces. It returns the key as written ("" if there is none) and the
// index after the '='.
func dsnKey(v string, i int) (string, int) {
	start := i
	for {
		for i < len(v) && isKeyChar(v[i]) {
			i++
		}
		end := i
		for i < len(v) && isSpace(v[i]) {
			i++
		}
		switch {
		case end == start:
			return "", i
		case i < len(v) && v[i] == '=':
			return v[start:end], i + 1
		case i == end+1 && i < len(v) && isKeyChar(v[i]):
			continue
		default:
			return "", i
		}
	}
}

// quotedEnd returns the index after the quote closing the quoted text that
// starts at v[i], honouring backslash escapes, or -1 if it is not closed.
func quotedEnd(v string, i int) int {
	q := v[i]
	for j := i + 1; j < len(v); j++ {
		switch v[j] {
		case '\\':
			j++
		case q:
			return j + 1
		}
	}
	return -1
}

// splitSpan splits the s part of v at each sep byte.
func splitSpan(v string, s span, sep byte) []span {
	var parts []span
	for start := s.start; ; {
		i := strings.IndexByte(v[start:s.end], sep)
		if i < 0 {
			return append(parts, span{start, s.end})
		}
		parts = append(parts, span{start, start + i})
		start += i + 1
	}
}

// dsnHostKeys name the host in libpq, Npgsql, MySqlConnector and SQL Server
// connection strings.
var dsnHostKeys = map[string]bool{"host": true, "server": true, "data source": true}

// libpqKeys are keys whose presence makes a hostless DSN libpq's, which then
// connects through a unix socket.
var libpqKeys = map[string]bool{"dbname": true, "user": true, "port": true, "sslmode": true, "password": true}

func scanDSN(v string, defaultPort int, res *scanned) {
	pairs, semicolons, ok := parseDSN(v)
	if !ok {
		return
	}
	var hostPair, portPair *dsnPair
	libpq := false
	for i := range pairs {
		p := &pairs[i]
		switch {
		case dsnHostKeys[p.key]:
			hostPair = p
		case p.key == "port":
			portPair = p
		case p.key == "hostaddr" && p.val.end > p.val.start:
			res.hostaddr = true
		}
		libpq = libpq || libpqKeys[p.key]
	}
	if hostPair == nil {
		if libpq && !semicolons && !res.hostaddr {
			res.socket = "the key=value DSN has no host: libpq connects through a unix socket"
		}
		return
	}
	hosts := splitSpan(v, hostPair.val, ',')
	var ports []span
	if portPair != nil {
		ports = splitSpan(v, portPair.val, ',')
		if len(ports) != 1 && len(ports) != len(hosts) {
			return
		}
	}
	sep, key := " ", "port="
	if semicolons {
		sep = ";"
	}
	if isLetter(hostPair.name[0]) && hostPair.name[0] < 'a' {
		key = "Port="
	}
	for i, h := range hosts {
		text := v[h.start:h.end]
		if text == "" || text[0] == '/' || text[0] == '@' {
			res.socket = "the key=value DSN's host is a unix socket path"
			continue
		}
		bracketed := len(text) > 2 && text[0] == '[' && text[len(text)-1] == ']'
		if bracketed {
			h = span{h.start + 1, h.end - 1}
		}
		if strings.Contains(v[h.start:h.end], ":") && !isIP(v[h.start:h.end]) {
			continue
		}
		ent := entry{form: formDSN, host: h, bracketed: bracketed, port: noSpan, insertAt: hostPair.token.end,
			addr: HostPort{Host: v[h.start:h.end], Port: defaultPort}, sharedPort: len(hosts) > 1 && len(ports) <= 1,
			dsnSep: sep + key}
		if len(ports) > 0 {
			ent.port = ports[min(i, len(ports)-1)]
		}
		if ent.explicitPort() {
			p, err := parsePort(v[ent.port.start:ent.port.end])
			if err != nil {
				continue
			}
			ent.addr.Port = p
		}
		res.entries = append(res.entries, ent)
	}
}
