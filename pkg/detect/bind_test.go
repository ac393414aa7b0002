package detect

import (
	"reflect"
	"testing"

	"github.com/stptunnel/stptunnel/pkg/doc"
)

func TestBind(t *testing.T) {
	resources := []doc.Resource{
		{Name: "postgresDb", Type: "postgres", URL: "postgres://app:pw@localhost:5432/app", Address: "localhost:5432"},
		{Name: "cache", Type: "redis", URL: "redis://localhost:6379", Address: "localhost:6379"},
		{Name: "orders", Type: "dynamodb", URL: "http://localhost:8000", Address: "localhost:8000"},
		{Name: "legacy", Type: "tcp", URL: "127.0.0.1:9000"}, // no address: taken from the URL
	}
	conv := func(env, res string) doc.Binding { return doc.Binding{Env: env, Resource: res, Via: doc.ViaConvention} }
	mapped := func(env, res string) doc.Binding { return doc.Binding{Env: env, Resource: res, Via: doc.ViaMap} }
	value := func(env, res string) doc.Binding { return doc.Binding{Env: env, Resource: res, Via: doc.ViaValue} }
	tests := []struct {
		name string
		env  map[string]string
		maps []Map
		want []doc.Binding
	}{
		{name: "nothing", env: map[string]string{"QUEUE": "jobs"}},
		{name: "no variables at all", env: nil},
		{
			name: "convention, every suffix, by name whatever the value, in suffix order",
			env: map[string]string{"STP_POSTGRES_DB_PORT": "5432", "STP_POSTGRES_DB_CONNECTION_STRING": "postgres://rds.example.com/app",
				"STP_POSTGRES_DB_HOST": "rds.example.com", "STP_ORDERS_ENDPOINT": "http://localhost:8000"},
			want: []doc.Binding{conv("STP_POSTGRES_DB_CONNECTION_STRING", "postgresDb"), conv("STP_POSTGRES_DB_HOST", "postgresDb"),
				conv("STP_POSTGRES_DB_PORT", "postgresDb"), conv("STP_ORDERS_ENDPOINT", "orders")},
		},
		{
			name: "convention is case-sensitive and needs the exact snake name",
			env:  map[string]string{"stp_postgres_db_host": "localhost", "STP_POSTGRESDB_HOST": "x", "STP_CACHE_URL": "x"},
		},
		{
			name: "map binds a variable the function has; absent ones bind nothing",
			env:  map[string]string{"DATABASE_URL": "postgres://rds.example.com/app"},
			maps: []Map{{Env: "DATABASE_URL", Resource: "postgresDb"}, {Env: "REDIS_URL", Resource: "cache"}},
			want: []doc.Binding{mapped("DATABASE_URL", "postgresDb")},
		},
		{
			name: "value: any form holding the local address, variables in name order",
			env: map[string]string{"Z_DSN": "host=127.0.0.1 port=5432 dbname=app", "A_REDIS": "redis://localhost",
				"JDBC": "jdbc:postgresql://localhost:5432/app", "LEGACY": "localhost:9000", "OTHER_PORT": "localhost:5433"},
			want: []doc.Binding{value("A_REDIS", "cache"), value("JDBC", "postgresDb"), value("LEGACY", "legacy"),
				value("Z_DSN", "postgresDb")},
		},
		{
			name: "a variable is bound once: convention beats map beats value",
			env: map[string]string{"STP_CACHE_CONNECTION_STRING": "postgres://localhost:5432/app",
				"DATABASE_URL": "redis://localhost:6379"},
			maps: []Map{{Env: "STP_CACHE_CONNECTION_STRING", Resource: "postgresDb"}, {Env: "DATABASE_URL", Resource: "postgresDb"}},
			want: []doc.Binding{conv("STP_CACHE_CONNECTION_STRING", "cache"), mapped("DATABASE_URL", "postgresDb")},
		},
		{
			name: "value picks the first resource in declaration order",
			env:  map[string]string{"BOTH": "postgres://localhost:5432/a redis://localhost:6379"},
			want: []doc.Binding{value("BOTH", "postgresDb")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Bind(tt.env, resources, tt.maps)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Bind =\n%v\nwant\n%v", got, tt.want)
			}
		})
	}
}

func TestConventionNames(t *testing.T) {
	got := ConventionNames("myDatabase")
	want := []string{"STP_MY_DATABASE_CONNECTION_STRING", "STP_MY_DATABASE_HOST", "STP_MY_DATABASE_PORT", "STP_MY_DATABASE_ENDPOINT"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ConventionNames = %v, want %v", got, want)
	}
}
