package connstr

import (
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"postgres://app:s3cret@localhost:5432/app", "postgres://app:****@localhost:5432/app"},
		{"postgres://app:s3%40cr%2Fet@localhost/app", "postgres://app:****@localhost/app"},
		{"postgres://app:s3@cret@localhost/app", "postgres://app:****@localhost/app"},
		{"postgres://app:s3/cr?et#x@localhost/app", "postgres://app:****@localhost/app"},
		{"postgres://u:p@ss:w/rd%#x@localhost:5432/app", "postgres://u:****@localhost:5432/app"},
		{"postgres://admin:p@ss/w@rd@db.example.com/app", "postgres://admin:****@db.example.com/app"},
		{"redis://:s3cret@localhost:6379/0", "redis://:****@localhost:6379/0"},
		{"redis://localhost:6379/0", "redis://localhost:6379/0"},
		{"postgres://app@localhost/app", "postgres://app@localhost/app"},
		{"host=localhost password=s3cret dbname=app", "host=localhost password=**** dbname=app"},
		{"host=localhost password = 's3 cr\\'et' dbname=app", "host=localhost password = '****' dbname=app"},
		{`Host=localhost;Password="s3;cret";Database=app`, `Host=localhost;Password="****";Database=app`},
		{"Server=localhost;Pwd=s3cret;", "Server=localhost;Pwd=****;"},
		{"app:s3cret@tcp(localhost:3306)/app?parseTime=true", "app:****@tcp(localhost:3306)/app?parseTime=true"},
		{"app:s3:cr@et@tcp(localhost:3306)/app", "app:****@tcp(localhost:3306)/app"},
		{"app:s3cret@/app", "app:****@/app"},
		{"jdbc:postgresql://localhost/app?user=app&password=s3cret&ssl=true", "jdbc:postgresql://localhost/app?user=app&password=****&ssl=true"},
		{"jdbc:sqlserver://localhost:1433;user=sa;password=s3cret;encrypt=true", "jdbc:sqlserver://localhost:1433;user=sa;password=****;encrypt=true"},
		{"updating DATABASE_URL from postgres://a:s3cret@localhost/x to postgres://a:s3cret@bore.pub:1/x: ok",
			"updating DATABASE_URL from postgres://a:****@localhost/x to postgres://a:****@bore.pub:1/x: ok"},
		{"PGPASSWORD=s3cret psql", "PGPASSWORD=**** psql"},
		{`{"user":"app","password":"s3\"cret","db":"x"}`, `{"user":"app","password":"****","db":"x"}`},
		{`BORE_SECRET=s3cret`, `BORE_SECRET=****`},
		{"password=", "password="},
		{"no secrets here: localhost:5432", "no secrets here: localhost:5432"},
	}
	for _, tt := range tests {
		got := Redact(tt.in)
		if got != tt.want {
			t.Errorf("Redact(%q) =\n %q, want\n %q", tt.in, got, tt.want)
		}
		// Every password in the table starts with "s3".
		if strings.Contains(got, "s3") {
			t.Errorf("Redact(%q) = %q leaks a password", tt.in, got)
		}
		if again := Redact(got); again != got {
			t.Errorf("Redact is not idempotent on %q: %q", got, again)
		}
	}
}

func TestWarnings(t *testing.T) {
	const (
		clear    = "no TLS"
		none     = "no password"
		standard = "well-known default password"
	)
	tests := []struct {
		in   string
		want []string
	}{
		{"postgres://postgres:postgres@localhost:5432/db", []string{clear, standard}},
		{"postgres://app:Xk2%40pLm9@localhost:5432/db?sslmode=require", nil},
		{"postgres://app:app@localhost/db?sslmode=require", []string{standard}},
		{"mysql://root:root@localhost/db", []string{clear, standard}},
		{"redis://localhost:6379", []string{clear, none}},
		{"redis://:@localhost:6379", []string{clear, none}},
		{"rediss://:Xk2pLm9@localhost:6379", nil},
		{"host=localhost user=postgres password=password sslmode=verify-ca", []string{standard}},
		{"root:@tcp(localhost:3306)/db?tls=skip-verify", []string{none}},
		{"jdbc:postgresql://localhost/db?user=u&password=Xk2pLm9", []string{clear}},
		{"http://localhost:8000", []string{clear}},
		{"localhost:9000", []string{clear}},
		{"no address here", nil},
	}
	for _, tt := range tests {
		got := Warnings(tt.in)
		if len(got) != len(tt.want) {
			t.Errorf("Warnings(%q) = %q, want %d warnings about %q", tt.in, got, len(tt.want), tt.want)
			continue
		}
		for i, w := range tt.want {
			if !strings.Contains(got[i], w) {
				t.Errorf("Warnings(%q)[%d] = %q, want it about %q", tt.in, i, got[i], w)
			}
			if strings.Contains(got[i], "Xk2") {
				t.Errorf("Warnings(%q) leaks the password: %q", tt.in, got[i])
			}
		}
	}
}
