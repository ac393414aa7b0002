package lambdaenv

import (
	"errors"
	"maps"
	"reflect"
	"strings"
	"testing"

	"github.com/stptunnel/stptunnel/pkg/connstr"
	"github.com/stptunnel/stptunnel/pkg/doc"
)

var (
	pgTarget = Target{Resource: doc.Resource{Name: "postgresDb", Type: "postgres", Address: "localhost:5432"},
		Public: connstr.HostPort{Host: "bore.pub", Port: 40001}}
	dynamoTarget = Target{Resource: doc.Resource{Name: "orders", Type: "dynamodb", Address: "localhost:8000"},
		Public: connstr.HostPort{Host: "bore.pub", Port: 40002}}
	redisTarget = Target{Resource: doc.Resource{Name: "cache", Type: "redis", URL: "redis://localhost:6379"},
		Public: connstr.HostPort{Host: "bore.pub", Port: 40003}}
)

func TestRewrite(t *testing.T) {
	conv := func(env, res string) doc.Binding { return doc.Binding{Env: env, Resource: res, Via: doc.ViaConvention} }
	all := map[string]Target{"postgresDb": pgTarget, "orders": dynamoTarget, "cache": redisTarget}
	cases := []struct {
		name     string
		current  map[string]string
		bindings []doc.Binding
		targets  map[string]Target
		want     []doc.Change // nil: no change
		unsup    bool
	}{
		{
			name:     "connection string keeps every other byte",
			current:  map[string]string{"STP_POSTGRES_DB_CONNECTION_STRING": "postgres://app:p%40ss@localhost:5432/app?sslmode=disable", "OTHER": "x"},
			bindings: []doc.Binding{conv("STP_POSTGRES_DB_CONNECTION_STRING", "postgresDb")},
			want: []doc.Change{{Env: "STP_POSTGRES_DB_CONNECTION_STRING", Existed: true,
				Before: "postgres://app:p%40ss@localhost:5432/app?sslmode=disable", After: "postgres://app:p%40ss@bore.pub:40001/app?sslmode=disable"}},
		},
		{
			name:     "host and port keys",
			current:  map[string]string{"STP_POSTGRES_DB_HOST": "localhost", "STP_POSTGRES_DB_PORT": "5432"},
			bindings: []doc.Binding{conv("STP_POSTGRES_DB_HOST", "postgresDb"), conv("STP_POSTGRES_DB_PORT", "postgresDb")},
			want: []doc.Change{
				{Env: "STP_POSTGRES_DB_HOST", Existed: true, Before: "localhost", After: "bore.pub"},
				{Env: "STP_POSTGRES_DB_PORT", Existed: true, Before: "5432", After: "40001"},
			},
		},
		{
			name: "a cloud host and port pair becomes the tunnel's, as a pair",
			current: map[string]string{"STP_POSTGRES_DB_PORT": "5432",
				"STP_POSTGRES_DB_HOST": "db.cluster-x.eu-west-1.rds.amazonaws.com"},
			bindings: []doc.Binding{conv("STP_POSTGRES_DB_HOST", "postgresDb"), conv("STP_POSTGRES_DB_PORT", "postgresDb")},
			want: []doc.Change{
				{Env: "STP_POSTGRES_DB_HOST", Existed: true, Before: "db.cluster-x.eu-west-1.rds.amazonaws.com", After: "bore.pub"},
				{Env: "STP_POSTGRES_DB_PORT", Existed: true, Before: "5432", After: "40001"},
			},
		},
		{
			name:     "a port of another value still becomes the tunnel's",
			current:  map[string]string{"STP_POSTGRES_DB_PORT": "6543", "STP_POSTGRES_DB_HOST": "db.example.com"},
			bindings: []doc.Binding{conv("STP_POSTGRES_DB_PORT", "postgresDb"), conv("STP_POSTGRES_DB_HOST", "postgresDb")},
			want: []doc.Change{
				{Env: "STP_POSTGRES_DB_HOST", Existed: true, Before: "db.example.com", After: "bore.pub"},
				{Env: "STP_POSTGRES_DB_PORT", Existed: true, Before: "6543", After: "40001"},
			},
		},
		{
			name:     "a host without its port: the port is added, so the pair moves together",
			current:  map[string]string{"STP_POSTGRES_DB_HOST": "db.example.com"},
			bindings: []doc.Binding{conv("STP_POSTGRES_DB_HOST", "postgresDb")},
			want: []doc.Change{
				{Env: "STP_POSTGRES_DB_HOST", Existed: true, Before: "db.example.com", After: "bore.pub"},
				{Env: "STP_POSTGRES_DB_PORT", After: "40001"},
			},
		},
		{
			name: "a cloud connection string becomes the declared URL at the tunnel",
			current: map[string]string{"STP_POSTGRES_DB_CONNECTION_STRING": "postgres://admin:cl0ud@db.cluster-x.eu-west-1.rds.amazonaws.com:5432/app?sslmode=require",
				"OTHER": "x"},
			bindings: []doc.Binding{conv("STP_POSTGRES_DB_CONNECTION_STRING", "postgresDb")},
			targets: map[string]Target{"postgresDb": {Resource: doc.Resource{Name: "postgresDb", Type: "postgres",
				URL: "postgres://app:l%40cal@localhost:5432/app?sslmode=disable&application_name=dev", Address: "localhost:5432"},
				Public: connstr.HostPort{Host: "bore.pub", Port: 40001}}},
			want: []doc.Change{{Env: "STP_POSTGRES_DB_CONNECTION_STRING", Existed: true,
				Before: "postgres://admin:cl0ud@db.cluster-x.eu-west-1.rds.amazonaws.com:5432/app?sslmode=require",
				After:  "postgres://app:l%40cal@bore.pub:40001/app?sslmode=disable&application_name=dev"}},
		},
		{
			name:     "a resource declared as HOST:PORT gives the tunnel's HOST:PORT",
			current:  map[string]string{"STP_LEGACY_CONNECTION_STRING": "legacy.internal.example.com:9000"},
			bindings: []doc.Binding{conv("STP_LEGACY_CONNECTION_STRING", "legacy")},
			targets: map[string]Target{"legacy": {Resource: doc.Resource{Name: "legacy", Type: "tcp", URL: "localhost:9000", Address: "localhost:9000"},
				Public: connstr.HostPort{Host: "bore.pub", Port: 40004}}},
			want: []doc.Change{{Env: "STP_LEGACY_CONNECTION_STRING", Existed: true, Before: "legacy.internal.example.com:9000", After: "bore.pub:40004"}},
		},
		{
			name:     "a declared URL without a port gets the tunnel's port",
			current:  map[string]string{"STP_CACHE_CONNECTION_STRING": "redis://master.cache-x.euw1.cache.amazonaws.com:6379"},
			bindings: []doc.Binding{conv("STP_CACHE_CONNECTION_STRING", "cache")},
			want: []doc.Change{{Env: "STP_CACHE_CONNECTION_STRING", Existed: true,
				Before: "redis://master.cache-x.euw1.cache.amazonaws.com:6379", After: "redis://bore.pub:40003"}},
		},
		{
			name:     "a cloud DynamoDB endpoint becomes the tunnel, and the SDK's variable is added",
			current:  map[string]string{"STP_ORDERS_ENDPOINT": "https://dynamodb.eu-west-1.amazonaws.com"},
			bindings: []doc.Binding{conv("STP_ORDERS_ENDPOINT", "orders")},
			want: []doc.Change{
				{Env: "AWS_ENDPOINT_URL_DYNAMODB", After: "http://bore.pub:40002"},
				{Env: "STP_ORDERS_ENDPOINT", Existed: true, Before: "https://dynamodb.eu-west-1.amazonaws.com", After: "http://bore.pub:40002"},
			},
		},
		{
			name:     "a map binding naming the cloud database is replaced",
			current:  map[string]string{"DATABASE_URL": "postgres://admin:pw@db.cluster-x.eu-west-1.rds.amazonaws.com/app"},
			bindings: []doc.Binding{{Env: "DATABASE_URL", Resource: "postgresDb", Via: doc.ViaMap}},
			want: []doc.Change{{Env: "DATABASE_URL", Existed: true, Before: "postgres://admin:pw@db.cluster-x.eu-west-1.rds.amazonaws.com/app",
				After: "bore.pub:40001"}},
		},
		{
			name:     "map bindings holding only a host or a port keep their form",
			current:  map[string]string{"DB_HOST": "db.cluster-x.eu-west-1.rds.amazonaws.com", "DB_PORT": "5432"},
			bindings: []doc.Binding{{Env: "DB_HOST", Resource: "postgresDb", Via: doc.ViaMap}, {Env: "DB_PORT", Resource: "postgresDb", Via: doc.ViaMap}},
			want: []doc.Change{
				{Env: "DB_HOST", Existed: true, Before: "db.cluster-x.eu-west-1.rds.amazonaws.com", After: "bore.pub"},
				{Env: "DB_PORT", Existed: true, Before: "5432", After: "40001"},
			},
		},
		{
			name:     "a declared rediss URL cannot be carried",
			current:  map[string]string{"STP_CACHE_CONNECTION_STRING": "rediss://master.cache-x.euw1.cache.amazonaws.com:6379"},
			bindings: []doc.Binding{conv("STP_CACHE_CONNECTION_STRING", "cache")},
			targets: map[string]Target{"cache": {Resource: doc.Resource{Name: "cache", Type: "redis", URL: "rediss://localhost:6379"},
				Public: connstr.HostPort{Host: "bore.pub", Port: 40003}}},
			unsup: true,
		},
		{
			name:     "dynamodb endpoint and the SDK's variable, added",
			current:  map[string]string{"STP_ORDERS_ENDPOINT": "localhost:8000"},
			bindings: []doc.Binding{conv("STP_ORDERS_ENDPOINT", "orders")},
			want: []doc.Change{
				{Env: "AWS_ENDPOINT_URL_DYNAMODB", After: "http://bore.pub:40002"},
				{Env: "STP_ORDERS_ENDPOINT", Existed: true, Before: "localhost:8000", After: "http://bore.pub:40002"},
			},
		},
		{
			name:     "dynamodb SDK variable already there is replaced",
			current:  map[string]string{"STP_ORDERS_ENDPOINT": "http://127.0.0.1:8000", "AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:8000"},
			bindings: []doc.Binding{conv("STP_ORDERS_ENDPOINT", "orders")},
			want: []doc.Change{
				{Env: "AWS_ENDPOINT_URL_DYNAMODB", Existed: true, Before: "http://127.0.0.1:8000", After: "http://bore.pub:40002"},
				{Env: "STP_ORDERS_ENDPOINT", Existed: true, Before: "http://127.0.0.1:8000", After: "http://bore.pub:40002"},
			},
		},
		{
			name:     "map binding, multi-host: only the local entry changes",
			current:  map[string]string{"DATABASE_URL": "postgres://u:p@db.example.com:5432,localhost:5432/app"},
			bindings: []doc.Binding{{Env: "DATABASE_URL", Resource: "postgresDb", Via: doc.ViaMap}},
			want: []doc.Change{{Env: "DATABASE_URL", Existed: true, Before: "postgres://u:p@db.example.com:5432,localhost:5432/app",
				After: "postgres://u:p@db.example.com:5432,bore.pub:40001/app"}},
		},
		{
			name:     "resource address taken from its URL; default port added",
			current:  map[string]string{"REDIS_URL": "redis://localhost"},
			bindings: []doc.Binding{{Env: "REDIS_URL", Resource: "cache", Via: doc.ViaValue}},
			want:     []doc.Change{{Env: "REDIS_URL", Existed: true, Before: "redis://localhost", After: "redis://bore.pub:40003"}},
		},
		{
			name:     "no target: left alone",
			current:  map[string]string{"STP_POSTGRES_DB_CONNECTION_STRING": "postgres://localhost:5432/app"},
			bindings: []doc.Binding{conv("STP_POSTGRES_DB_CONNECTION_STRING", "postgresDb")},
			targets:  map[string]Target{"orders": dynamoTarget},
		},
		{
			name:     "variable gone since detect: left alone",
			current:  map[string]string{"OTHER": "1"},
			bindings: []doc.Binding{conv("STP_POSTGRES_DB_CONNECTION_STRING", "postgresDb")},
		},
		{
			name:     "bound by value, no longer local: left alone",
			current:  map[string]string{"DATABASE_URL": "postgres://u:p@prod.example.com:5432/app"},
			bindings: []doc.Binding{{Env: "DATABASE_URL", Resource: "postgresDb", Via: doc.ViaValue}},
		},
		{
			name:     "TLS verifying localhost cannot be carried",
			current:  map[string]string{"STP_CACHE_CONNECTION_STRING": "rediss://localhost:6379"},
			bindings: []doc.Binding{conv("STP_CACHE_CONNECTION_STRING", "cache")},
			unsup:    true,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			targets := c.targets
			if targets == nil {
				targets = all
			}
			snapshot := maps.Clone(c.current)
			next, changes, _, err := Rewrite(c.current, c.bindings, targets)
			if !reflect.DeepEqual(c.current, snapshot) {
				t.Fatal("Rewrite modified its input map")
			}
			if c.unsup {
				var u *connstr.Unsupported
				if !errors.As(err, &u) || !strings.Contains(err.Error(), c.bindings[0].Env) {
					t.Fatalf("err = %v, want an *connstr.Unsupported naming the variable", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(changes, c.want) {
				t.Fatalf("changes = %+v\nwant      %+v", changes, c.want)
			}
			// The map is current with exactly the changes applied.
			want := maps.Clone(c.current)
			for _, ch := range c.want {
				want[ch.Env] = ch.After
			}
			if !reflect.DeepEqual(next, want) {
				t.Fatalf("map = %v, want %v", next, want)
			}
		})
	}
}

func TestRewriteTwoDynamoDBResourcesConflict(t *testing.T) {
	other := dynamoTarget
	other.Resource.Name, other.Resource.Address, other.Public.Port = "users", "localhost:8001", 40009
	_, _, _, err := Rewrite(map[string]string{"STP_ORDERS_ENDPOINT": "localhost:8000", "STP_USERS_ENDPOINT": "localhost:8001"},
		[]doc.Binding{{Env: "STP_ORDERS_ENDPOINT", Resource: "orders"}, {Env: "STP_USERS_ENDPOINT", Resource: "users"}},
		map[string]Target{"orders": dynamoTarget, "users": other})
	var u *connstr.Unsupported
	if !errors.As(err, &u) {
		t.Fatalf("err = %v, want *connstr.Unsupported", err)
	}
}

func TestCheckLimits(t *testing.T) {
	// {"K":"<v>"} is 8 bytes of JSON around the value.
	sized := func(n int) map[string]string { return map[string]string{"K": strings.Repeat("a", n-8)} }
	cases := []struct {
		name   string
		env    map[string]string
		reason string
		key    string
		size   int
	}{
		{name: "empty", env: nil},
		{name: "exactly 4096", env: sized(4096)},
		{name: "4097", env: sized(4097), reason: doc.ReasonTooLarge, size: 4097},
		{name: "HTML characters are not escaped", env: map[string]string{"K": strings.Repeat("<", 4088)}},
		{name: "reserved", env: map[string]string{"A": "1", "AWS_REGION": "x"}, reason: doc.ReasonReservedKey, key: "AWS_REGION"},
		{name: "reserved before size", env: map[string]string{"_HANDLER": strings.Repeat("a", 5000)}, reason: doc.ReasonReservedKey, key: "_HANDLER"},
		{name: "exec wrapper is allowed", env: map[string]string{"AWS_LAMBDA_EXEC_WRAPPER": "/opt/w"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := CheckLimits(c.env)
			if c.reason == "" {
				if err != nil {
					t.Fatalf("CheckLimits = %v, want nil", err)
				}
				return
			}
			var le *LimitError
			if !errors.As(err, &le) || le.Reason != c.reason || le.Key != c.key || le.Size != c.size {
				t.Fatalf("CheckLimits = %#v, want reason %s key %q size %d", err, c.reason, c.key, c.size)
			}
		})
	}
	if got := EnvSize(map[string]string{"A": "é"}); got != len(`{"A":"é"}`) {
		t.Fatalf("EnvSize counts bytes: got %d", got)
	}
}

func TestDecideDescribe(t *testing.T) {
	conv := func(env string) doc.Binding {
		return doc.Binding{Env: env, Resource: "postgresDb", Via: doc.ViaConvention}
	}
	cases := []struct {
		env, value string
		binding    doc.Binding
		action     Action
		describe   string
	}{
		{"STP_POSTGRES_DB_CONNECTION_STRING", "postgres://app:s3cret@localhost:5432/app", conv("STP_POSTGRES_DB_CONNECTION_STRING"),
			ActionInPlace, "rewrite in place"},
		{"STP_POSTGRES_DB_CONNECTION_STRING", "postgres://admin:s3cret@db.cluster-x.eu-west-1.rds.amazonaws.com:5432/app", conv("STP_POSTGRES_DB_CONNECTION_STRING"),
			ActionReplace, "replace db.cluster-x.eu-west-1.rds.amazonaws.com:5432 with the tunnel"},
		{"STP_POSTGRES_DB_CONNECTION_STRING", "postgres://admin:p@ss/w@rd@db.example.com/app", conv("STP_POSTGRES_DB_CONNECTION_STRING"),
			ActionReplace, "replace db.example.com with the tunnel"},
		{"STP_POSTGRES_DB_HOST", "db.example.com", conv("STP_POSTGRES_DB_HOST"), ActionReplace, "replace db.example.com with the tunnel"},
		{"STP_POSTGRES_DB_HOST", "localhost", conv("STP_POSTGRES_DB_HOST"), ActionInPlace, "rewrite in place"},
		{"STP_POSTGRES_DB_PORT", "5432", conv("STP_POSTGRES_DB_PORT"), ActionInPlace, "rewrite in place"},
		{"DATABASE_URL", "postgres://u:s3cret@prod.example.com:5432/app", doc.Binding{Env: "DATABASE_URL", Resource: "postgresDb", Via: doc.ViaValue},
			ActionKeep, "leave it as it is: DATABASE_URL no longer names localhost:5432"},
		{"OTHER", "x", conv("STP_POSTGRES_DB_CONNECTION_STRING"), ActionKeep, "leave it as it is: STP_POSTGRES_DB_CONNECTION_STRING is not set on the function"},
	}
	for _, c := range cases {
		t.Run(c.describe, func(t *testing.T) {
			d, err := Decide(map[string]string{c.env: c.value}, c.binding, pgTarget)
			if err != nil {
				t.Fatal(err)
			}
			if d.Action != c.action || d.Describe() != c.describe {
				t.Fatalf("Decide = %s %q, want %s %q", d.Action, d.Describe(), c.action, c.describe)
			}
			if strings.Contains(d.Describe(), "s3cret") || strings.Contains(d.Describe(), "rd@") {
				t.Fatalf("Describe leaks a password: %q", d.Describe())
			}
		})
	}
}
