package connstr

import (
	"strings"
	"testing"
)

func TestParseLocal(t *testing.T) {
	tests := []struct {
		spec    string
		want    Local
		wantErr string
	}{
		{spec: "postgresDb=postgres://app:s3cret@localhost:5432/app",
			want: Local{"postgresDb", TypePostgres, "postgres://app:s3cret@localhost:5432/app", HostPort{"localhost", 5432}}},
		{spec: "pg=postgresql://localhost/app", want: Local{"pg", TypePostgres, "postgresql://localhost/app", HostPort{"localhost", 5432}}},
		{spec: "pg=jdbc:postgresql://127.0.0.1:5433/app", want: Local{"pg", TypePostgres, "jdbc:postgresql://127.0.0.1:5433/app", HostPort{"127.0.0.1", 5433}}},
		{spec: "db=mysql://root:s3cret@localhost/app", want: Local{"db", TypeMySQL, "mysql://root:s3cret@localhost/app", HostPort{"localhost", 3306}}},
		{spec: "db=mariadb://localhost:3307", want: Local{"db", TypeMySQL, "mariadb://localhost:3307", HostPort{"localhost", 3307}}},
		{spec: "cache=redis://localhost", want: Local{"cache", TypeRedis, "redis://localhost", HostPort{"localhost", 6379}}},
		{spec: "cache=rediss://:s3cret@[::1]:6380", want: Local{"cache", TypeRedis, "rediss://:s3cret@[::1]:6380", HostPort{"::1", 6380}}},
		{spec: "orders:dynamodb=http://localhost:8000", want: Local{"orders", TypeDynamoDB, "http://localhost:8000", HostPort{"localhost", 8000}}},
		{spec: "orders:DynamoDB=http://localhost", want: Local{"orders", TypeDynamoDB, "http://localhost", HostPort{"localhost", 8000}}},
		{spec: "svc=localhost:9000", want: Local{"svc", TypeTCP, "localhost:9000", HostPort{"localhost", 9000}}},
		{spec: "svc=[::1]:9000", want: Local{"svc", TypeTCP, "[::1]:9000", HostPort{"::1", 9000}}},
		{spec: "pg:postgres=localhost", want: Local{"pg", TypePostgres, "localhost", HostPort{"localhost", 5432}}},
		{spec: "any:tcp=amqp://localhost:5672", want: Local{"any", TypeTCP, "amqp://localhost:5672", HostPort{"localhost", 5672}}},
		{spec: "pg=postgres://localhost/app?sslmode=disable", want: Local{"pg", TypePostgres, "postgres://localhost/app?sslmode=disable", HostPort{"localhost", 5432}}},

		{spec: "x", wantErr: `--local "x": missing "=URL"`},
		{spec: "x:postgres://u:s3cret@localhost/db?sslmode=disable", wantErr: `missing "=" between NAME[:TYPE] and the URL`},
		{spec: "=postgres://localhost", wantErr: "missing NAME"},
		{spec: "x=", wantErr: "missing URL"},
		{spec: "my db=localhost:1", wantErr: `name "my db"`},
		{spec: "x:mongo=mongodb://localhost", wantErr: `unknown type "mongo"`},
		{spec: "x=http://localhost:8000", wantErr: "NAME:dynamodb=URL"},
		{spec: "x=amqp://localhost:5672", wantErr: `cannot infer the type from scheme "amqp"`},
		{spec: "x:mysql=postgres://localhost", wantErr: "type mysql does not match a postgres:// URL"},
		{spec: "x=localhost", wantErr: "missing port"},
		{spec: "x=localhost:70000", wantErr: "port 70000 out of range"},
		{spec: "x=postgres://u:s3cret@localhost:99999/db", wantErr: "out of range"},
		{spec: "x=postgres://u:s3cret@localhost,localhost:5433/db", wantErr: "several hosts"},
		{spec: "x=postgres:///db?host=/var/run/postgresql", wantErr: "unix sockets"},
		{spec: "x=redis+unix:///tmp/redis.sock", wantErr: "cannot infer the type"},
		{spec: "x:redis=unix:///tmp/redis.sock", wantErr: "type redis does not match"},
		{spec: "x:tcp=unix:///tmp/redis.sock", wantErr: "unix sockets"},
		{spec: "x=mysql://u:s3cret@/db", wantErr: "no host"},
		{spec: "x=postgres://u:s3cr#et@localhost/db", wantErr: "password holds an unencoded"},
	}
	for _, tt := range tests {
		got, err := ParseLocal(tt.spec)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseLocal(%q) error = %v, want it to contain %q", tt.spec, err, tt.wantErr)
			} else if strings.Contains(err.Error(), "s3cr") {
				t.Errorf("ParseLocal(%q) error leaks the password: %v", tt.spec, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseLocal(%q) = %+v, %v; want %+v", tt.spec, got, err, tt.want)
		}
	}
}

func TestNewLocal(t *testing.T) {
	got, err := NewLocal("postgresDb", "", "postgres://app:pw@localhost:5432/app")
	if err != nil || got.Type != TypePostgres || got.Address != (HostPort{"localhost", 5432}) {
		t.Errorf("NewLocal = %+v, %v", got, err)
	}
	_, err = NewLocal("x", "", "postgres://app:s3cret@localhost:0/app")
	if err == nil || !strings.HasPrefix(err.Error(), `resource "x": `) || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("NewLocal with port 0: error = %v, want a resource error without the password", err)
	}
}

func TestSnakeName(t *testing.T) {
	tests := map[string]string{
		"postgresDb":  "POSTGRES_DB",
		"myDatabase":  "MY_DATABASE",
		"mainDb2":     "MAIN_DB2",
		"HTTPServer":  "HTTP_SERVER",
		"my-db":       "MY_DB",
		"my_db":       "MY_DB",
		"MY_DB":       "MY_DB",
		"orders":      "ORDERS",
		"db2Main":     "DB2_MAIN",
		"myDB":        "MY_DB",
		"a--b":        "A_B",
		"ordersTable": "ORDERS_TABLE",
		"userAPIKey":  "USER_API_KEY",
		"":            "",
	}
	for in, want := range tests {
		if got := SnakeName(in); got != want {
			t.Errorf("SnakeName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseLocalForms(t *testing.T) {
	cases := []struct {
		spec, typ, addr string
		err             string
	}{
		{spec: "my:mysql=root:pw@tcp(localhost:3306)/app", typ: "mysql", addr: "localhost:3306"},
		{spec: "my=root:p@ss:w@tcp(127.0.0.1:3307)/app?parseTime=true", typ: "mysql", addr: "127.0.0.1:3307"},
		{spec: "pg=host=localhost port=5433 user=app password='s3 cret' dbname=app", typ: "postgres", addr: "localhost:5433"},
		{spec: "pg=host=localhost dbname=app", typ: "postgres", addr: "localhost:5432"},
		{spec: "pg=postgres://u:p@ss@localhost:5432/app", typ: "postgres", addr: "localhost:5432"},
		{spec: "pg=postgres://u:p@ss:w/rd%#x@localhost:5432/app", err: "password holds an unencoded"},
		{spec: "pg=postgres://u:pass/word@localhost/app", err: "password holds an unencoded"},
		{spec: "pg=dbname=app", err: "unix socket"},
	}
	for _, c := range cases {
		l, err := ParseLocal(c.spec)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParseLocal(%q) = %v, want an error with %q", c.spec, err, c.err)
			}
			for _, secret := range []string{"ss:w", "rd%", "pass/word", "p@ss"} {
				if err != nil && strings.Contains(err.Error(), secret) {
					t.Errorf("ParseLocal(%q): the error shows a piece of the password: %v", c.spec, err)
				}
			}
			continue
		}
		if err != nil || l.Type != c.typ || l.Address.String() != c.addr {
			t.Errorf("ParseLocal(%q) = %+v, %v; want type %s at %s", c.spec, l, err, c.typ, c.addr)
		}
	}
}
