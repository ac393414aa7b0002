package connstr

import (
	"errors"
	"strings"
	"testing"
)

var (
	pgLocal  = HostPort{"localhost", 5432}
	pgPublic = HostPort{"bore.pub", 54321}
)

func TestRewrite(t *testing.T) {
	tests := []struct {
		name        string
		in          string
		local       HostPort // pgLocal when zero
		public      HostPort // pgPublic when zero
		defaultPort int      // 5432 when zero
		want        string
		wantN       int
	}{
		{name: "url", in: "postgres://app:pw@localhost:5432/app", want: "postgres://app:pw@bore.pub:54321/app", wantN: 1},
		{name: "url keeps encoding, query and fragment",
			in:   "postgresql://us%65r:p%40ss%2Fw@127.0.0.1:5432/my%20db?sslmode=disable&application_name=a%2Bb#frag",
			want: "postgresql://us%65r:p%40ss%2Fw@bore.pub:54321/my%20db?sslmode=disable&application_name=a%2Bb#frag", wantN: 1},
		{name: "url without port gets one", in: "postgres://localhost/app", want: "postgres://bore.pub:54321/app", wantN: 1},
		{name: "url with empty port", in: "postgres://localhost:/app", want: "postgres://bore.pub:54321/app", wantN: 1},
		{name: "url other port untouched", in: "postgres://localhost:5433/app", want: "postgres://localhost:5433/app"},
		{name: "url remote host untouched", in: "postgres://db.example.com:5432/app", want: "postgres://db.example.com:5432/app"},
		{name: "multi-host, one matches", in: "postgres://localhost:5432,localhost:5433/db",
			want: "postgres://bore.pub:54321,localhost:5433/db", wantN: 1},
		{name: "multi-host, both match", in: "postgres://localhost,127.0.0.1:5432/db?target_session_attrs=any",
			want: "postgres://bore.pub:54321,bore.pub:54321/db?target_session_attrs=any", wantN: 2},
		{name: "any local spelling matches", in: "postgres://host.docker.internal:5432/db", want: "postgres://bore.pub:54321/db", wantN: 1},
		{name: "ipv6 local", in: "postgres://u@[::1]:5432/db", want: "postgres://u@bore.pub:54321/db", wantN: 1},
		{name: "ipv6 public", in: "postgres://localhost:5432/db", public: HostPort{"2001:db8::1", 4000},
			want: "postgres://[2001:db8::1]:4000/db", wantN: 1},
		{name: "scheme default, not the caller's", in: "mysql://root@localhost/app", local: HostPort{"localhost", 3306},
			want: "mysql://root@bore.pub:54321/app", wantN: 1},
		{name: "redis", in: "redis://:pw@localhost", local: HostPort{"localhost", 6379}, want: "redis://:pw@bore.pub:54321", wantN: 1},
		{name: "jdbc postgres", in: "jdbc:postgresql://localhost:5432/app?user=a&password=b",
			want: "jdbc:postgresql://bore.pub:54321/app?user=a&password=b", wantN: 1},
		{name: "jdbc mysql", in: "jdbc:mysql://localhost:3306/app", local: HostPort{"localhost", 3306},
			want: "jdbc:mysql://bore.pub:54321/app", wantN: 1},
		{name: "dynamodb endpoint", in: "http://localhost:8000", local: HostPort{"localhost", 8000}, defaultPort: 8000,
			want: "http://bore.pub:54321", wantN: 1},
		{name: "dynamodb endpoint without port", in: "http://localhost", local: HostPort{"localhost", 8000}, defaultPort: 8000,
			want: "http://bore.pub:54321", wantN: 1},
		{name: "libpq dsn", in: "host=localhost port=5432 dbname=app user=app password='a b'",
			want: "host=bore.pub port=54321 dbname=app user=app password='a b'", wantN: 1},
		{name: "libpq dsn port first, spaces around =", in: "port = 5432 host = localhost",
			want: "port = 54321 host = bore.pub", wantN: 1},
		{name: "libpq dsn quoted", in: "host='localhost' port='5432'", want: "host='bore.pub' port='54321'", wantN: 1},
		{name: "libpq dsn without port gets one", in: "host=localhost dbname=app", want: "host=bore.pub port=54321 dbname=app", wantN: 1},
		{name: "libpq dsn quoted host without port", in: "dbname=app host='localhost'", want: "dbname=app host='bore.pub' port=54321", wantN: 1},
		{name: "libpq dsn other port untouched", in: "host=localhost port=5433", want: "host=localhost port=5433"},
		{name: "libpq multi-host own ports", in: "host=localhost,localhost port=5432,5433",
			want: "host=bore.pub,localhost port=54321,5433", wantN: 1},
		{name: "libpq multi-host shared port, all match", in: "host=localhost,127.0.0.1 port=5432",
			want: "host=bore.pub,bore.pub port=54321", wantN: 2},
		{name: "ado.net dsn", in: "Host=localhost;Port=5432;Database=app;Password=x",
			want: "Host=bore.pub;Port=54321;Database=app;Password=x", wantN: 1},
		{name: "ado.net dsn without port", in: "Server=localhost;Database=app", want: "Server=bore.pub;Port=54321;Database=app", wantN: 1},
		{name: "mysql dsn", in: "u:p@tcp(localhost:3306)/app?parseTime=true", local: HostPort{"localhost", 3306},
			want: "u:p@tcp(bore.pub:54321)/app?parseTime=true", wantN: 1},
		{name: "mysql dsn without port", in: "u:p@tcp(127.0.0.1)/app", local: HostPort{"localhost", 3306},
			want: "u:p@tcp(bore.pub:54321)/app", wantN: 1},
		{name: "mysql dsn ipv6", in: "tcp([::1]:3306)/app", local: HostPort{"localhost", 3306}, want: "tcp(bore.pub:54321)/app", wantN: 1},
		{name: "bare", in: "localhost:6379", local: HostPort{"localhost", 6379}, want: "bore.pub:54321", wantN: 1},
		{name: "bare list", in: "localhost:7000,localhost:7001", local: HostPort{"localhost", 7001}, want: "localhost:7000,bore.pub:54321", wantN: 1},
		{name: "bare ipv6", in: "[::1]:5432", want: "bore.pub:54321", wantN: 1},
		{name: "bare inside json", in: `{"endpoint":"127.0.0.1:5432","other":"localhost:1"}`,
			want: `{"endpoint":"bore.pub:54321","other":"localhost:1"}`, wantN: 1},
		{name: "bare needs a port", in: "localhost", want: "localhost"},
		{name: "bare not inside words", in: "xlocalhost:5432 localhost:54320 localhost:5432.5", want: "xlocalhost:5432 localhost:54320 localhost:5432.5"},
		{name: "verify-ca is fine", in: "postgres://localhost:5432/db?sslmode=verify-ca", want: "postgres://bore.pub:54321/db?sslmode=verify-ca", wantN: 1},
		{name: "verify-full on another resource's value", in: "postgres://localhost:5433/db?sslmode=verify-full",
			want: "postgres://localhost:5433/db?sslmode=verify-full"},
		{name: "back from public", in: "postgres://bore.pub:54321/db", local: pgPublic, public: pgLocal,
			want: "postgres://localhost:5432/db", wantN: 1},
		{name: "nothing", in: "", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			local, public, def := tt.local, tt.public, tt.defaultPort
			if local == (HostPort{}) {
				local = pgLocal
			}
			if public == (HostPort{}) {
				public = pgPublic
			}
			if def == 0 {
				def = 5432
			}
			got, n, err := Rewrite(tt.in, local, public, def)
			if err != nil || got != tt.want || n != tt.wantN {
				t.Errorf("Rewrite(%q) =\n %q, %d, %v\nwant\n %q, %d", tt.in, got, n, err, tt.want, tt.wantN)
			}
			if References(tt.in, local, def) != (tt.wantN > 0) {
				t.Errorf("References(%q) = %v, want %v", tt.in, !(tt.wantN > 0), tt.wantN > 0)
			}
		})
	}
}

func TestRewriteUnsupported(t *testing.T) {
	tests := []struct {
		in, reason string
	}{
		{"rediss://:pw@localhost:5432", "rediss://"},
		{"https://localhost:5432", "https://"},
		{"postgres://localhost:5432/db?sslmode=verify-full", "sslmode=verify-full"},
		{"host=localhost port=5432 sslmode=verify-full", "sslmode=verify-full"},
		{"jdbc:mysql://localhost:5432/db?sslMode=VERIFY_IDENTITY", "verify_identity"},
		{"u:p@tcp(localhost:5432)/db?tls=true", "tls=true"},
		{"postgres:///db?host=/var/run/postgresql", "unix socket"},
		{"postgres://%2Fvar%2Frun%2Fpostgresql/db", "unix socket"},
		{"postgres://u:p@/db", "unix socket"},
		{"host=/tmp dbname=app", "unix socket"},
		{"dbname=app user=app", "unix socket"},
		{"u:p@unix(/tmp/mysql.sock)/db", "unix socket"},
		{"unix:///tmp/redis.sock", "unix socket"},
		{"host=localhost hostaddr=127.0.0.1 port=5432", "hostaddr"},
		{"host=localhost,db.internal port=5432", "share one port"},
		{"host=localhost,db.internal", "share one port"},
	}
	for _, tt := range tests {
		got, n, err := Rewrite(tt.in, pgLocal, pgPublic, 5432)
		var unsupported *Unsupported
		if !errors.As(err, &unsupported) || !strings.Contains(unsupported.Reason, tt.reason) {
			t.Errorf("Rewrite(%q) error = %v, want *Unsupported about %q", tt.in, err, tt.reason)
		}
		if got != tt.in || n != 0 {
			t.Errorf("Rewrite(%q) = %q, %d; want the value unchanged and 0", tt.in, got, n)
		}
	}
}

func TestRewriteBadAddresses(t *testing.T) {
	if _, _, err := Rewrite("localhost:5432", HostPort{"localhost", 0}, pgPublic, 0); err == nil {
		t.Error("Rewrite with local port 0: no error")
	}
	if _, _, err := Rewrite("localhost:5432", pgLocal, HostPort{"bad host", 1}, 0); err == nil {
		t.Error("Rewrite with a public host holding a space: no error")
	}
}

func TestFind(t *testing.T) {
	tests := []struct {
		in   string
		want []string // "text=host:port" for each match
	}{
		{"postgres://u:p@localhost:5432,db:5432,[::1]/x", []string{"localhost:5432=localhost:5432", "[::1]=[::1]:5432"}},
		{"host=localhost port=6000", []string{"localhost=localhost:6000"}},
		{"host=127.0.0.1", []string{"127.0.0.1=127.0.0.1:5432"}},
		{"u:p@tcp(localhost)/db", []string{"localhost=localhost:3306"}},
		{"redis://localhost", []string{"localhost=localhost:6379"}},
		{"cache at 0.0.0.0:6379, api at example.com:80", []string{"0.0.0.0:6379=0.0.0.0:6379"}},
		{"postgres://example.com/db", nil},
	}
	for _, tt := range tests {
		var got []string
		for _, m := range Find(tt.in, 5432) {
			got = append(got, tt.in[m.Start:m.End]+"="+m.Addr.String())
		}
		if strings.Join(got, " ") != strings.Join(tt.want, " ") {
			t.Errorf("Find(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
