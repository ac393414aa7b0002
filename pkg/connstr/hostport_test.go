package connstr

import (
	"strings"
	"testing"
)

func TestHostPortString(t *testing.T) {
	tests := []struct {
		in   HostPort
		want string
	}{
		{HostPort{"localhost", 5432}, "localhost:5432"},
		{HostPort{"::1", 5432}, "[::1]:5432"},
		{HostPort{"bore.pub", 0}, "bore.pub"},
	}
	for _, tt := range tests {
		if got := tt.in.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseHostPort(t *testing.T) {
	tests := []struct {
		in      string
		want    HostPort
		wantErr string
	}{
		{in: "localhost:5432", want: HostPort{"localhost", 5432}},
		{in: "[::1]:6379", want: HostPort{"::1", 6379}},
		{in: "bore.pub:65535", want: HostPort{"bore.pub", 65535}},
		{in: "localhost", wantErr: "missing port"},
		{in: ":5432", wantErr: "missing host"},
		{in: "localhost:0", wantErr: "out of range"},
		{in: "localhost:65536", wantErr: "out of range"},
		{in: "localhost:http", wantErr: "not a number"},
		{in: "::1:5432", wantErr: "brackets"},
		{in: "[::1", wantErr: `missing "]"`},
		{in: "a/b:1", wantErr: "host contains"},
	}
	for _, tt := range tests {
		got, err := ParseHostPort(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseHostPort(%q) error = %v, want it to contain %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseHostPort(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestIsLocalHost(t *testing.T) {
	local := []string{"localhost", "LocalHost", "127.0.0.1", "127.1.2.3", "::1", "[::1]", "0.0.0.0",
		"host.docker.internal", "HOST.DOCKER.INTERNAL", "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1"}
	remote := []string{"", "bore.pub", "10.0.0.1", "128.0.0.1", "localhost.example.com", "::2", "db", "127.0.0.1.nip.io", "fe80::1%eth0"}
	for _, h := range local {
		if !IsLocalHost(h) {
			t.Errorf("IsLocalHost(%q) = false, want true", h)
		}
	}
	for _, h := range remote {
		if IsLocalHost(h) {
			t.Errorf("IsLocalHost(%q) = true, want false", h)
		}
	}
}

func TestDefaultPort(t *testing.T) {
	want := map[string]int{TypePostgres: 5432, TypeMySQL: 3306, TypeRedis: 6379, TypeDynamoDB: 8000, TypeTCP: 0, "mongodb": 0}
	for typ, port := range want {
		if got := DefaultPort(typ); got != port {
			t.Errorf("DefaultPort(%q) = %d, want %d", typ, got, port)
		}
	}
}
