package connstr

import (
	"net/url"
	"strings"
)

// Warnings returns what a user should hear before the service value points
// at becomes reachable from the internet through a tunnel: that nothing
// encrypts the traffic (no TLS setting in value), and that the password is
// missing, empty, the user name, or a well-known default. nil when value
// holds no address. The warnings never contain the password.
func Warnings(value string) []string {
	sc := scan(value, 0)
	if len(sc.entries) == 0 {
		return nil
	}
	var warnings []string
	if !hasTLS(value, sc.entries) {
		warnings = append(warnings, "no TLS in the connection string: the traffic through the tunnel, password included, crosses the internet in clear text")
	}
	if user, pass, ok := credentials(value, sc.entries[0]); ok {
		switch {
		case pass == "":
			warnings = append(warnings, "no password: anyone who finds the tunnel's public port can connect")
		case weakPassword(user, pass):
			warnings = append(warnings, "well-known default password: anyone who finds the tunnel's public port can log in; use a real one for the session")
		}
	}
	return warnings
}

// defaultPasswords are the passwords of quick-start images and tutorials.
var defaultPasswords = map[string]bool{
	"postgres": true, "password": true, "root": true, "admin": true, "secret": true, "mysql": true,
	"mariadb": true, "redis": true, "example": true, "changeme": true, "test": true, "123456": true,
	"pass": true, "toor": true, "dev": true,
}

func weakPassword(user, pass string) bool {
	return defaultPasswords[strings.ToLower(pass)] || pass == user
}

// databaseSchemes are URL schemes whose userinfo logs into a database.
var databaseSchemes = map[string]bool{
	"postgres": true, "postgresql": true, "mysql": true, "mariadb": true, "redis": true, "rediss": true,
}

// credentials returns the user and password e's connection string logs in
// with; ok is false when its form does not carry credentials (a bare
// HOST:PORT, an http endpoint).
func credentials(value string, e entry) (user, pass string, ok bool) {
	switch {
	case e.form == formURL && databaseSchemes[e.scheme]:
		authStart := strings.LastIndex(value[:e.host.start], "://") + 3
		if at := strings.LastIndexByte(value[authStart:e.host.start], '@'); at >= 0 {
			u, p, _ := strings.Cut(value[authStart:authStart+at], ":")
			user, pass = unescape(u, url.PathUnescape), unescape(p, url.PathUnescape)
		}
	case e.form == formMySQL:
		if at := strings.LastIndexByte(value[:e.host.start], '@'); at >= 0 {
			start := at
			for start > 0 && !isTokenEnd(value[start-1]) {
				start--
			}
			user, pass, _ = strings.Cut(value[start:at], ":")
		}
	case e.form == formDSN:
	default:
		return "", "", false
	}
	isCredential := func(key string) bool {
		switch key {
		case "user", "username", "uid", "password", "pwd":
			return true
		}
		return false
	}
	for _, p := range params(value, isCredential) {
		v := value[p.val.start:p.val.end]
		if e.form == formURL {
			v = unescape(v, url.QueryUnescape)
		}
		if p.key == "password" || p.key == "pwd" {
			pass = v
		} else {
			user = v
		}
	}
	return user, pass, true
}

func unescape(s string, decode func(string) (string, error)) string {
	if u, err := decode(s); err == nil {
		return u
	}
	return s
}
