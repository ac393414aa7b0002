package connstr

import "strings"

// param is one key=value found anywhere in a text.
type param struct {
	key string // lower-cased
	val span   // the value, without quotes
}

// paramValueEnd ends an unquoted value: in a URL query ("?k=v&..."), at the
// next parameter; elsewhere (libpq, JDBC ";k=v", an env line) at a space or
// semicolon.
func paramValueEnd(c byte, query bool) bool {
	if query {
		return c == '&' || c == '#' || isSpace(c) || c == '"' || c == '\''
	}
	return isSpace(c) || c == ';'
}

// params returns the key=value pairs of s whose lower-cased key want
// accepts: URL query parameters, DSN pairs, JDBC ";key=value", env lines. A
// quoted value runs to its closing quote, or to the end of s if unclosed.
// Matching stops nowhere: s may be a whole log message.
func params(s string, want func(key string) bool) []param {
	var found []param
	for i := 0; i < len(s); {
		j := strings.IndexByte(s[i:], '=')
		if j < 0 {
			break
		}
		eq := i + j
		i = eq + 1
		keyEnd := eq
		for keyEnd > 0 && isSpace(s[keyEnd-1]) {
			keyEnd--
		}
		keyStart := keyEnd
		for keyStart > 0 && isKeyChar(s[keyStart-1]) {
			keyStart--
		}
		key := strings.ToLower(s[keyStart:keyEnd])
		// ADO.NET spells it "SSL Mode".
		if key == "mode" && keyStart >= 4 && strings.EqualFold(s[keyStart-4:keyStart], "ssl ") {
			key = "sslmode"
		}
		if key == "" || !want(key) {
			continue
		}
		query := keyStart > 0 && (s[keyStart-1] == '?' || s[keyStart-1] == '&')
		start := eq + 1
		for !query && start < len(s) && (s[start] == ' ' || s[start] == '\t') {
			start++
		}
		p := param{key: key}
		if !query && start < len(s) && (s[start] == '\'' || s[start] == '"') {
			end := quotedEnd(s, start)
			if end < 0 {
				p.val = span{start + 1, len(s)}
				i = len(s)
			} else {
				p.val = span{start + 1, end - 1}
				i = end
			}
		} else {
			end := start
			for end < len(s) && !paramValueEnd(s[end], query) {
				end++
			}
			p.val = span{start, end}
			i = end
		}
		found = append(found, p)
	}
	return found
}

func paramValue(s string, p param) string {
	return strings.ToLower(strings.TrimSpace(s[p.val.start:p.val.end]))
}

func isTLSKey(key string) bool {
	switch key {
	case "sslmode", "ssl-mode", "ssl_mode", "tls", "ssl", "usessl", "requiressl", "encrypt":
		return true
	}
	return false
}

// tlsVerifyReason says why value's TLS settings verify the server's hostname,
// which a tunnel changes, or "" if they do not.
func tlsVerifyReason(value string) string {
	for _, p := range params(value, isTLSKey) {
		switch val := paramValue(value, p); {
		case p.key == "tls" && val == "true":
			return "tls=true verifies the server certificate against the local hostname, which the tunnel's public host cannot present; use tls=skip-verify"
		case (p.key == "sslmode" || p.key == "ssl-mode" || p.key == "ssl_mode") &&
			(val == "verify-full" || val == "verify_identity" || val == "verifyfull"):
			return p.key + "=" + val + " verifies the server certificate against the local hostname, which the tunnel's public host cannot present; use verify-ca or require"
		}
	}
	return ""
}

// hasTLS reports whether value asks for an encrypted connection.
func hasTLS(value string, entries []entry) bool {
	for _, e := range entries {
		if e.scheme == "rediss" || e.scheme == "https" {
			return true
		}
	}
	for _, p := range params(value, isTLSKey) {
		switch paramValue(value, p) {
		case "require", "required", "verify-ca", "verify-full", "verify_ca", "verify_identity",
			"verifyca", "verifyfull", "true", "1", "skip-verify", "yes", "strict", "mandatory":
			return true
		}
	}
	return false
}
