package connstr

import (
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

var rewriteSeeds = []string{
	"postgres://app:pw@localhost:5432/app?sslmode=disable#x",
	"postgres://localhost:5432,localhost:5433/db",
	"postgres://[::1]:5432/db",
	"postgres://localhost/db",
	"jdbc:postgresql://localhost:5432/app?user=a&password=b",
	"host=localhost port=5432 dbname=app password='x y'",
	"host='localhost' dbname=app",
	"host=localhost,localhost port=5432,5433",
	"Host=localhost;Port=5432;Database=app",
	"u:p@tcp(localhost:5432)/db?tls=false",
	"localhost:5432",
	`{"a":"localhost:5432","b":"[::1]:5432"}`,
	"http://localhost:5432",
	"rediss://localhost:5432",
	"postgres:///db?host=/tmp",
}

// FuzzRewrite checks that Rewrite only changes the host and port of the
// entries at the local address, and that rewriting back restores the value
// when every one of them had an explicit port spelled as the local host.
func FuzzRewrite(f *testing.F) {
	for _, s := range rewriteSeeds {
		f.Add(s, uint16(5432), uint16(54321), false)
		f.Add(s, uint16(5433), uint16(5432), true)
	}
	f.Fuzz(func(t *testing.T, value string, localPort, publicPort uint16, ipv6 bool) {
		local := HostPort{"localhost", int(localPort%65535) + 1}
		public := HostPort{"bore.pub", int(publicPort%65535) + 1}
		if ipv6 {
			public.Host = "2001:db8::7"
		}
		out, n, err := Rewrite(value, local, public, 5432)
		if err != nil {
			if out != value || n != 0 {
				t.Fatalf("Rewrite(%q) failed (%v) but returned %q, %d", value, err, out, n)
			}
			return
		}
		sc := scan(value, 5432)
		var hits []entry
		for _, e := range sc.entries {
			checkSpans(t, value, e)
			if sameAddr(e.addr, local) {
				hits = append(hits, e)
			}
		}
		if n != len(hits) {
			t.Fatalf("Rewrite(%q) = %d entries, scan found %d", value, n, len(hits))
		}
		checkOnlyEntriesChanged(t, value, out, hits, public)
		if !restorable(value, hits, public) {
			return
		}
		back, m, err := Rewrite(out, public, local, 5432)
		if err != nil || back != value || m != n {
			t.Fatalf("rewriting back\n %q\nfrom\n %q\ngave\n %q, %d, %v", value, out, back, m, err)
		}
	})
}

// checkSpans checks that an entry's spans hold what its address says.
func checkSpans(t *testing.T, v string, e entry) {
	t.Helper()
	if got := v[e.host.start:e.host.end]; got != e.addr.Host {
		t.Fatalf("entry host span of %q holds %q, address says %q", v, got, e.addr.Host)
	}
	if e.bracketed && (v[e.host.start-1] != '[' || v[e.host.end] != ']') {
		t.Fatalf("bracketed entry of %q at %d has no brackets", v, e.host.start)
	}
	if e.explicitPort() {
		if p, err := parsePort(v[e.port.start:e.port.end]); err != nil || p != e.addr.Port {
			t.Fatalf("entry port span of %q holds %q, address says %d", v, v[e.port.start:e.port.end], e.addr.Port)
		}
	}
	if m := e.match(); m.Start > e.host.start || m.End < e.host.end || v[m.Start:m.End] == "" {
		t.Fatalf("match %+v of %q does not cover the host %d-%d", m, v, e.host.start, e.host.end)
	}
}

// checkOnlyEntriesChanged walks out against value: every byte outside the
// hits' host and port texts must be the same, in order, and every replaced
// or inserted text must be the public host or port.
func checkOnlyEntriesChanged(t *testing.T, value, out string, hits []entry, public HostPort) {
	t.Helper()
	type change struct {
		at         span
		candidates []string
	}
	host, port := public.Host, strconv.Itoa(public.Port)
	var changes []change
	seen := map[span]bool{}
	for _, e := range hits {
		outer := e.host
		if e.bracketed {
			outer = span{outer.start - 1, outer.end + 1}
		}
		changes = append(changes, change{outer, []string{host, "[" + host + "]"}})
		p := e.port
		cands := []string{port}
		if p.start < 0 {
			p = span{e.insertAt, e.insertAt}
			cands = []string{":" + port, " port=" + port, ";port=" + port, " Port=" + port, ";Port=" + port}
		}
		if !seen[p] {
			seen[p] = true
			changes = append(changes, change{p, cands})
		}
	}
	for i := 1; i < len(changes); i++ {
		for j := i; j > 0 && changes[j].at.start < changes[j-1].at.start; j-- {
			changes[j], changes[j-1] = changes[j-1], changes[j]
		}
	}
	pos, last := 0, 0
	for _, c := range changes {
		gap := value[last:c.at.start]
		if !strings.HasPrefix(out[pos:], gap) {
			t.Fatalf("Rewrite(%q) = %q changed bytes outside the entries near %d", value, out, last)
		}
		pos += len(gap)
		matched := false
		for _, cand := range c.candidates {
			if strings.HasPrefix(out[pos:], cand) {
				pos += len(cand)
				matched = true
				break
			}
		}
		if !matched {
			t.Fatalf("Rewrite(%q) = %q: at %d want one of %q", value, out, pos, c.candidates)
		}
		last = c.at.end
	}
	if out[pos:] != value[last:] {
		t.Fatalf("Rewrite(%q) = %q changed the tail after %d", value, out, last)
	}
}

// restorable reports whether rewriting back must give value exactly: every
// hit has an explicit port written without leading zeros and is spelled
// "localhost" (other spellings of this machine come back as "localhost"),
// and nothing in value was already at the public address.
func restorable(value string, hits []entry, public HostPort) bool {
	for _, e := range hits {
		if !e.explicitPort() || value[e.port.start] == '0' || e.bracketed || value[e.host.start:e.host.end] != "localhost" {
			return false
		}
	}
	for _, e := range scan(value, 5432).entries {
		if sameAddr(e.addr, public) || strings.EqualFold(e.addr.Host, public.Host) {
			return false
		}
	}
	return true
}

// FuzzRedact builds connection strings of every form around a password and
// checks that Redact's output does not contain it.
func FuzzRedact(f *testing.F) {
	f.Add("app", "s3cret", "localhost:5432", "tail")
	f.Add("", "p@ss:w/rd?#", "[::1]:6379", "")
	f.Add("root", "it's \"q\" \\ ;", "db", "more text")
	f.Add("u", "%41%", "h", "x")
	f.Fuzz(func(t *testing.T, user, pass, host, tail string) {
		if pass == "" || strings.Contains(pass, "*") {
			return
		}
		host = strings.Map(func(r rune) rune {
			if r < 128 && (isHostChar(byte(r)) || r == ':' || r == '[' || r == ']') {
				return r
			}
			return -1
		}, host)
		if host == "" {
			host = "localhost"
		}
		quoted := strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(pass)
		jsonPass, _ := json.Marshal(pass)
		mysqlUser := strings.ReplaceAll(user, ":", "")
		forms := []struct {
			name string
			text func(pass string) string
			// the password as it appears in the text
			written string
			ok      bool
		}{
			{"url", func(p string) string {
				return (&url.URL{Scheme: "postgres", User: url.UserPassword(user, p), Host: host, Path: "/db"}).String()
			}, url.UserPassword(user, pass).String(), true},
			{"libpq", func(p string) string { return "host=" + host + " password='" + p + "' dbname=x" }, quoted, true},
			{"query", func(p string) string { return "jdbc:postgresql://" + host + "/db?user=u&password=" + p + "&ssl=true" },
				url.QueryEscape(pass), true},
			{"json", func(p string) string { return `{"password":"` + p + `"}` }, string(jsonPass[1 : len(jsonPass)-1]), true},
			{"mysql", func(p string) string { return mysqlUser + ":" + p + "@tcp(" + host + ")/db" }, pass,
				!strings.ContainsAny(pass, " \t\r\n\"<>`")},
			{"env", func(p string) string { return "PGPASSWORD=" + p }, pass, !strings.ContainsAny(pass, " \t\r\n;'\"")},
		}
		for _, form := range forms {
			if !form.ok {
				continue
			}
			in := "msg " + form.text(form.written) + " " + tail
			without := "msg " + form.text("") + " " + tail
			got := Redact(in)
			for _, secret := range []string{pass, form.written} {
				if strings.Contains(without, secret) || strings.Contains(secret, "*") {
					continue // the password also stands elsewhere in the text
				}
				if strings.Contains(got, secret) {
					t.Fatalf("%s: Redact(%q) = %q leaks %q", form.name, in, got, secret)
				}
			}
		}
	})
}
