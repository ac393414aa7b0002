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
			name:     "a port key for another port is left alone",
			current:  map[string]string{"STP_POSTGRES_DB_PORT": "5433", "STP_POSTGRES_DB_HOST": "db.example.com"},
			bindings: []doc.Binding{conv("STP_POSTGRES_DB_PORT", "postgresDb"), conv("STP_POSTGRES_DB_HOST", "postgresDb")},
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
			name:     "value no longer local: left alone",
			current:  map[string]string{"STP_POSTGRES_DB_CONNECTION_STRING": "postgres://u:p@prod.example.com:5432/app"},
			bindings: []doc.Binding{conv("STP_POSTGRES_DB_CONNECTION_STRING", "postgresDb")},
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
			next, changes, err := Rewrite(c.current, c.bindings, targets)
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
	_, _, err := Rewrite(map[string]string{"STP_ORDERS_ENDPOINT": "localhost:8000", "STP_USERS_ENDPOINT": "localhost:8001"},
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
