package connstr

import (
	"fmt"
	"strings"
	"unicode"
)

// Local is a local resource declared with `--local NAME[:TYPE]=URL`.
type Local struct {
	Name string
	Type string // one of the Type constants
	// URL is the URL as given (password included: it is data, not a log);
	// "HOST:PORT" for a tcp resource declared without a scheme.
	URL string
	// Address is where the resource listens; a missing port is the type's
	// default.
	Address HostPort
}

// ParseLocal parses a `--local NAME[:TYPE]=URL` flag value. Its errors name
// the spec, with any password redacted.
func ParseLocal(spec string) (Local, error) {
	fail := func(err error) (Local, error) {
		return Local{}, fmt.Errorf("--local %q: %w", Redact(spec), err)
	}
	left, url, ok := strings.Cut(spec, "=")
	if !ok {
		return fail(fmt.Errorf(`missing "=URL" (want NAME[:TYPE]=URL)`))
	}
	if strings.Contains(left, "/") {
		return fail(fmt.Errorf(`missing "=" between NAME[:TYPE] and the URL`))
	}
	name, typ, _ := strings.Cut(left, ":")
	l, err := newLocal(name, typ, url)
	if err != nil {
		return fail(err)
	}
	return l, nil
}

// NewLocal validates a local resource: name, type (inferred from the URL's
// scheme when typ is ""), URL and port. Its errors never contain the URL's
// password.
func NewLocal(name, typ, url string) (Local, error) {
	l, err := newLocal(name, typ, url)
	if err != nil {
		return Local{}, fmt.Errorf("resource %q: %w", name, err)
	}
	return l, nil
}

func newLocal(name, typ, url string) (Local, error) {
	if err := checkName(name); err != nil {
		return Local{}, err
	}
	typ = strings.ToLower(typ)
	if typ != "" && typ != TypeTCP && DefaultPort(typ) == 0 {
		return Local{}, fmt.Errorf("unknown type %q (want postgres, mysql, redis, dynamodb or tcp)", typ)
	}
	if url == "" {
		return Local{}, fmt.Errorf(`missing URL after "="`)
	}
	sep := strings.Index(url, "://")
	if sep < 0 {
		return newLocalDSN(name, typ, url)
	}
	scheme, auth, ok := urlAt(url, sep)
	if !ok || strings.TrimPrefix(strings.ToLower(url[:sep]), "jdbc:") != scheme {
		return Local{}, fmt.Errorf("URL does not start with a scheme")
	}
	typ, err := typeForScheme(typ, scheme)
	if err != nil {
		return Local{}, err
	}
	// A password with an unencoded '/', '?' or '#' ends the authority early for every URL parser (drivers
	// included): the host would be part of the password. Say so, never showing it.
	token := url[sep+3:]
	if end := strings.IndexFunc(token, func(r rune) bool { return r < 128 && isTokenEnd(byte(r)) }); end >= 0 {
		token = token[:end]
	}
	if ui := urlUserinfoEnd(token); ui > 0 && sep+3+ui > auth.end {
		return Local{}, fmt.Errorf("the URL's password holds an unencoded '/', '?' or '#': percent-encode it (%%2F, %%3F, %%23), " +
			"or drivers will take part of it for the host")
	}
	hosts := auth.start
	if at := strings.LastIndexByte(url[auth.start:auth.end], '@'); at >= 0 {
		hosts = auth.start + at + 1
	}
	switch {
	case isSocketScheme(scheme) || (isPostgresScheme(scheme) && postgresURLSocket(url, hosts, auth.end)):
		return Local{}, fmt.Errorf("unix sockets cannot be tunnelled; give a TCP address")
	case hosts == auth.end:
		return Local{}, fmt.Errorf("URL has no host")
	case strings.Contains(url[hosts:auth.end], ","):
		return Local{}, fmt.Errorf("URL lists several hosts; declare one --local per address")
	}
	addr, err := parseAddr(url[hosts:auth.end], DefaultPort(typ))
	if err != nil {
		return Local{}, fmt.Errorf("URL address: %w", err)
	}
	return Local{Name: name, Type: typ, URL: url, Address: addr}, nil
}

// newLocalDSN is a resource declared without a URL: HOST:PORT (tcp unless typed), a Go MySQL DSN
// (user:pass@tcp(host:port)/db, mysql) or a key=value DSN (host=... port=..., postgres unless typed).
func newLocalDSN(name, typ, value string) (Local, error) {
	sc := scan(value, DefaultPort(typ))
	var dsn []entry
	for _, e := range sc.entries {
		if e.form == formMySQL || e.form == formDSN {
			dsn = append(dsn, e)
		}
	}
	switch {
	case sc.socket != "":
		return Local{}, fmt.Errorf("unix sockets cannot be tunnelled (%s); give a TCP address", sc.socket)
	case len(dsn) > 1:
		return Local{}, fmt.Errorf("the DSN lists several hosts; declare one --local per address")
	case len(dsn) == 1:
		inferred := TypeMySQL
		if dsn[0].form == formDSN {
			inferred = TypePostgres
		}
		if typ == "" {
			typ = inferred
		}
		addr := dsn[0].addr
		if dsn[0].form == formDSN && !dsn[0].explicitPort() && DefaultPort(typ) != 0 {
			addr.Port = DefaultPort(typ)
		}
		if addr.Port == 0 {
			return Local{}, fmt.Errorf("the DSN has no port")
		}
		return Local{Name: name, Type: typ, URL: value, Address: addr}, nil
	}
	if typ == "" {
		typ = TypeTCP
	}
	addr, err := parseAddr(value, DefaultPort(typ))
	if err != nil {
		return Local{}, fmt.Errorf("address: %w (want a URL, HOST:PORT, a Go MySQL DSN or a key=value DSN)", err)
	}
	return Local{Name: name, Type: typ, URL: value, Address: addr}, nil
}

// typeForScheme checks the declared type typ against a URL's scheme, or
// infers it when typ is "".
func typeForScheme(typ, scheme string) (string, error) {
	var inferred string
	switch scheme {
	case "postgres", "postgresql":
		inferred = TypePostgres
	case "mysql", "mariadb":
		inferred = TypeMySQL
	case "redis", "rediss":
		inferred = TypeRedis
	}
	web := scheme == "http" || scheme == "https"
	switch {
	case typ == "" && inferred != "":
		return inferred, nil
	case typ == "" && web:
		return "", fmt.Errorf("the type of an %s:// URL cannot be inferred; for DynamoDB Local write NAME:dynamodb=URL", scheme)
	case typ == "":
		return "", fmt.Errorf("cannot infer the type from scheme %q; write NAME:TYPE=URL", scheme)
	case typ == TypeTCP, typ == inferred, typ == TypeDynamoDB && web:
		return typ, nil
	}
	return "", fmt.Errorf("type %s does not match a %s:// URL", typ, scheme)
}

// checkName accepts names that SnakeName turns into a variable name part.
func checkName(name string) error {
	if name == "" {
		return fmt.Errorf("missing NAME before \"=\"")
	}
	for i, r := range name {
		if r > unicode.MaxASCII || !(isAlnum(byte(r)) || (i > 0 && (r == '_' || r == '-'))) {
			return fmt.Errorf("name %q: use letters, digits, '_' and '-', starting with a letter or digit", name)
		}
	}
	return nil
}

// SnakeName turns a resource name into the SNAKE_CASE part of Stacktape's
// variable names (STP_<SNAKE_NAME>_CONNECTION_STRING): a word starts at an
// upper-case letter after a lower-case letter or digit, at the last capital
// of an acronym followed by a lower-case letter, and after any character
// that is neither letter nor digit. postgresDb -> POSTGRES_DB,
// HTTPServer -> HTTP_SERVER, mainDb2 -> MAIN_DB2, my-db -> MY_DB.
func SnakeName(name string) string {
	runes := []rune(name)
	var b strings.Builder
	separate := false
	for i, r := range runes {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			separate = true
			continue
		}
		if b.Len() > 0 {
			prev := runes[i-1]
			upper := unicode.IsUpper(r)
			acronymEnd := upper && unicode.IsUpper(prev) && i+1 < len(runes) && unicode.IsLower(runes[i+1])
			if separate || acronymEnd || (upper && (unicode.IsLower(prev) || unicode.IsDigit(prev))) {
				b.WriteByte('_')
			}
		}
		separate = false
		b.WriteRune(unicode.ToUpper(r))
	}
	return b.String()
}
