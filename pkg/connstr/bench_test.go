package connstr

import (
	"strings"
	"testing"
)

const benchValue = "postgres://app:s3cret@localhost:5432,db.internal:5432/app?sslmode=disable&application_name=api"

func BenchmarkRewrite(b *testing.B) {
	for b.Loop() {
		if _, n, err := Rewrite(benchValue, pgLocal, pgPublic, 5432); n != 1 || err != nil {
			b.Fatal(n, err)
		}
	}
}

func BenchmarkRewriteDSN(b *testing.B) {
	const dsn = "host=localhost port=5432 dbname=app user=app password='s3 cret' sslmode=disable"
	for b.Loop() {
		if _, n, err := Rewrite(dsn, pgLocal, pgPublic, 5432); n != 1 || err != nil {
			b.Fatal(n, err)
		}
	}
}

func BenchmarkRedact(b *testing.B) {
	msg := "✓ Updating Lambda env vars: api: DATABASE_URL " + benchValue + " -> host=bore.pub port=1 password=s3cret"
	for b.Loop() {
		if strings.Contains(Redact(msg), "s3cret") {
			b.Fatal("leak")
		}
	}
}

// BenchmarkRedactAdversarial measures a 4 KB value (the Lambda environment
// limit) built to make scanners backtrack.
func BenchmarkRedactAdversarial(b *testing.B) {
	value := strings.Repeat("a://b:@/", 512)
	for b.Loop() {
		Redact(value)
	}
}

func BenchmarkRewriteAdversarial(b *testing.B) {
	value := strings.Repeat("localhost:5432,(tcp([", 200)
	for b.Loop() {
		Rewrite(value, pgLocal, pgPublic, 5432)
	}
}
