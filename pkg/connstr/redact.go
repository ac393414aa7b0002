package connstr

import (
	"sort"
	"strings"
)

// Redacted replaces every password Redact hides.
const Redacted = "****"

// Redact returns s with every password replaced by "****": URL userinfo
// passwords (percent-encoded or not), password-like keys in key=value DSNs,
// URL queries, JDBC ";key=value" tails, env lines and JSON ("password",
// "passwd", "pwd", "pass", and keys ending in password or secret), and Go
// MySQL DSN passwords (user:pass@tcp(...)). s may be a whole log message.
// Where a form is ambiguous, Redact hides too much rather than too little.
func Redact(s string) string {
	var hide []span
	hide = appendURLPasswords(s, hide)
	hide = appendMySQLPasswords(s, hide)
	for _, p := range params(s, isSecretKey) {
		hide = append(hide, p.val)
	}
	hide = appendJSONPasswords(s, hide)
	return replaceSpans(s, hide)
}

func isSecretKey(key string) bool {
	switch key {
	case "pass", "pwd", "passwd":
		return true
	}
	for _, suffix := range []string{"password", "passwd", "_pwd", "_pass", "-pass", "secret"} {
		if strings.HasSuffix(key, suffix) {
			return true
		}
	}
	return false
}

// appendURLPasswords adds the password of every "scheme://user:pass@" in s.
func appendURLPasswords(s string, hide []span) []span {
	end := 0 // end of the current token: found once for all its URLs
	for i := 0; ; {
		k := strings.Index(s[i:], "://")
		if k < 0 {
			return hide
		}
		start := i + k + 3
		if end < start {
			end = start
			for end < len(s) && !isTokenEnd(s[end]) {
				end++
			}
		}
		i = start
		if ui := urlUserinfoEnd(s[start:end]); ui > 0 {
			if c := strings.IndexByte(s[start:start+ui], ':'); c >= 0 {
				hide = append(hide, span{start + c + 1, start + ui})
			}
			i = start + ui
		}
	}
}

// urlUserinfoEnd returns the index of the '@' ending the userinfo of token,
// the text after "://", or -1. Everything between "://" and the last '@'
// that is followed by a host list (host[:port][,host[:port]...], up to the
// next '/', '?', '#' or the end) is credentials: a password with an
// unencoded '@', '/', '?', '#' or ':' is hidden whole. That may hide a path
// or query with an '@' in it: too much, not too little. When no '@' is
// followed by a host list, the last '@' before the first '/', '?' or '#'
// ends it, as URL parsers read it.
func urlUserinfoEnd(token string) int {
	for at := strings.LastIndexByte(token, '@'); at >= 0; at = strings.LastIndexByte(token[:at], '@') {
		rest := token[at+1:]
		if end := strings.IndexAny(rest, "/?#"); end >= 0 {
			rest = rest[:end]
		}
		if isHostList(rest) {
			return at
		}
	}
	authEnd := strings.IndexAny(token, "/?#")
	if authEnd < 0 {
		authEnd = len(token)
	}
	return strings.LastIndexByte(token[:authEnd], '@')
}

// isHostList reports whether s reads as a URL's host list: host[:port] entries
// separated by commas, IPv6 in brackets; empty (a unix socket URL) counts.
func isHostList(s string) bool {
	for _, h := range strings.Split(s, ",") {
		host, port := h, ""
		if strings.HasPrefix(h, "[") {
			end := strings.IndexByte(h, ']')
			if end < 0 {
				return false
			}
			host, port = h[1:end], strings.TrimPrefix(h[end+1:], ":")
			if len(h) > end+1 && h[end+1] != ':' {
				return false
			}
		} else if c := strings.IndexByte(h, ':'); c >= 0 {
			host, port = h[:c], h[c+1:]
		}
		for i := 0; i < len(host); i++ {
			if !isHostChar(host[i]) && host[i] != ':' && host[i] != '%' {
				return false
			}
		}
		for i := 0; i < len(port); i++ {
			if !isDigit(port[i]) {
				return false
			}
		}
	}
	return true
}

// appendMySQLPasswords adds the password of every Go MySQL DSN
// "user:pass@proto(" or "user:pass@/" in s. The driver splits user from
// password at the first ':', so the password runs from there to the '@'.
func appendMySQLPasswords(s string, hide []span) []span {
	tokenStart, lastURL := 0, -1
	for i := 0; i < len(s); i++ {
		switch {
		case isTokenEnd(s[i]):
			tokenStart = i + 1
		case strings.HasPrefix(s[i:], "://"):
			lastURL = i
		case s[i] == '@' && lastURL < tokenStart && mysqlAddressFollows(s[i+1:]):
			// (a URL's userinfo is appendURLPasswords' business)
			if c := strings.IndexByte(s[tokenStart:i], ':'); c >= 0 {
				hide = append(hide, span{tokenStart + c + 1, i})
			}
		}
	}
	return hide
}

// mysqlAddressFollows reports whether rest, the text after an '@', starts
// like a Go MySQL DSN's address: "/db" or "proto(".
func mysqlAddressFollows(rest string) bool {
	if strings.HasPrefix(rest, "/") {
		return true
	}
	n := 0
	for n < len(rest) && n < 8 && isAlnum(rest[n]) {
		n++
	}
	return n > 0 && n < len(rest) && rest[n] == '('
}

// appendJSONPasswords adds the string value of every JSON member whose name
// is secret-like: "password": "value".
func appendJSONPasswords(s string, hide []span) []span {
	for i := 0; i < len(s); {
		k := strings.IndexByte(s[i:], ':')
		if k < 0 {
			return hide
		}
		colon := i + k
		i = colon + 1
		nameEnd := colon
		for nameEnd > 0 && isSpace(s[nameEnd-1]) {
			nameEnd--
		}
		if nameEnd == 0 || s[nameEnd-1] != '"' {
			continue
		}
		nameStart := nameEnd - 1
		for nameStart > 0 && isKeyChar(s[nameStart-1]) {
			nameStart--
		}
		if nameStart == 0 || s[nameStart-1] != '"' || !isSecretKey(strings.ToLower(s[nameStart:nameEnd-1])) {
			continue
		}
		v := colon + 1
		for v < len(s) && isSpace(s[v]) {
			v++
		}
		if v == len(s) || s[v] != '"' {
			continue
		}
		end := quotedEnd(s, v)
		if end < 0 {
			end = len(s) + 1
		}
		hide = append(hide, span{v + 1, end - 1})
		i = end - 1
	}
	return hide
}

// replaceSpans replaces each non-empty span of s, merged where they overlap,
// with Redacted.
func replaceSpans(s string, hide []span) string {
	sort.Slice(hide, func(i, j int) bool { return hide[i].start < hide[j].start })
	var b strings.Builder
	last := 0
	for _, h := range hide {
		if h.end <= h.start {
			continue
		}
		if h.start < last {
			if h.end > last {
				last = h.end
			}
			continue
		}
		b.WriteString(s[last:h.start])
		b.WriteString(Redacted)
		last = h.end
	}
	b.WriteString(s[last:])
	return b.String()
}
