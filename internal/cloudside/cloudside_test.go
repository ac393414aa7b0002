package cloudside_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stptunnel/stptunnel/internal/cloudside"
	"github.com/stptunnel/stptunnel/internal/services"
	"github.com/stptunnel/stptunnel/pkg/bore"
	"github.com/stptunnel/stptunnel/pkg/bore/boretest"
	"github.com/stptunnel/stptunnel/pkg/connstr"
)

// variant is one way users write a connection string: env holds the function's variables as a developer wrote
// them, pointing at the local server.
type variant struct {
	name string
	env  map[string]string
}

// variants are the connection strings real users have, for the server s.
func variants(s *services.Server) []variant {
	port := strconv.Itoa(s.Port)
	enc := url.UserPassword(s.User, s.Password).String()
	switch s.Kind {
	case services.KindPostgres:
		quoted := strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s.Password)
		return []variant{
			{"url", map[string]string{"DB": s.URL()}},
			{"postgresql-127-query-options", map[string]string{"DB": "postgresql://" + enc + "@127.0.0.1:" + port +
				"/app?sslmode=disable&application_name=stptunnel-e2e&connect_timeout=10"}},
			{"key-value-dsn", map[string]string{"DB": "host=localhost port=" + port + " user=stp password='" + quoted +
				"' dbname=app sslmode=disable"}},
		}
	case services.KindMariaDB:
		return []variant{
			{"go-dsn-tcp", map[string]string{"DB": s.User + ":" + s.Password + "@tcp(localhost:" + port + ")/app?parseTime=true&timeout=5s"}},
			{"go-dsn-tcp-127", map[string]string{"DB": s.User + ":" + s.Password + "@tcp(127.0.0.1:" + port + ")/app"}},
			{"url", map[string]string{"DB": s.URL() + "?charset=utf8mb4"}},
		}
	case services.KindRedis:
		pw := url.UserPassword("default", s.Password).String()
		return []variant{
			{"url", map[string]string{"DB": s.URL()}},
			{"db-number", map[string]string{"DB": "redis://" + pw + "@127.0.0.1:" + port + "/3"}},
			{"db-number-query-options", map[string]string{"DB": "redis://" + pw + "@localhost:" + port + "/5?dial_timeout=5s&client_name=stptunnel"}},
		}
	default:
		return []variant{
			{"localhost", map[string]string{"DB": "http://localhost:" + port, "AWS_ENDPOINT_URL_DYNAMODB": "http://localhost:" + port}},
			{"127", map[string]string{"DB": "http://127.0.0.1:" + port, "AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:" + port}},
		}
	}
}

var resourceType = map[string]string{
	services.KindPostgres: connstr.TypePostgres,
	services.KindMariaDB:  connstr.TypeMySQL,
	services.KindRedis:    connstr.TypeRedis,
	services.KindDynalite: connstr.TypeDynamoDB,
}

// TestThroughTunnel runs each handler against a real server behind a real bore tunnel (pkg/bore on loopback), with
// each connection-string variant rewritten as env patch does: the handler reaches the database only through the
// tunnel, refuses the unpatched string, and fails once the tunnel is gone.
func TestThroughTunnel(t *testing.T) {
	for _, kind := range services.Kinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			s := services.StartT(t, kind, services.Options{})
			typ := resourceType[kind]
			boreServer := boretest.Start(t, bore.ServerConfig{})
			client, public := openTunnel(t, boreServer, s.Port)
			cloud := cloudside.Cloud{LocalPorts: []int{s.Port}}
			handler, err := cloud.Handler(typ, "DB")
			if err != nil {
				t.Fatal(err)
			}
			local := connstr.HostPort{Host: "localhost", Port: s.Port}

			for i, v := range variants(s) {
				patched := map[string]string{"AWS_REGION": "eu-west-1"}
				for k, value := range v.env {
					rewritten, n, err := connstr.Rewrite(value, local, public, connstr.DefaultPort(typ))
					if err != nil || n != 1 {
						t.Fatalf("%s: rewriting %s=%q: %d entries, %v", v.name, k, value, n, err)
					}
					patched[k] = rewritten
				}
				want := "value " + strconv.Itoa(i) + " of " + kind + " via " + v.name
				before := boreServer.Stats().ConnectionsForwarded
				resp := invoke(t, handler, patched, cloudside.Request{Key: v.name, Value: want})
				if resp.Value != want {
					t.Errorf("%s: read back %q, want %q", v.name, resp.Value, want)
				}
				if len(resp.Dialed) == 0 || resp.Dialed[0] != public.String() {
					t.Errorf("%s: dialed %v, want %s (the tunnel)", v.name, resp.Dialed, public)
				}
				if got := boreServer.Stats().ConnectionsForwarded - before; got < 1 {
					t.Errorf("%s: the bore server forwarded %d connections, want at least 1", v.name, got)
				}
				t.Logf("%s: %s (%s) through %v", v.name, resp.Driver, resp.Server, resp.Dialed)

				// The same variables unpatched name the developer's machine: refused before any connection.
				_, err := handler(t.Context(), withRegion(v.env), nil)
				var local *cloudside.LocalError
				if !errors.As(err, &local) {
					t.Errorf("%s: unpatched connection string: got %v, want a LocalError", v.name, err)
				}
				if kind == services.KindRedis {
					checkRedisDB(t, s, patched["DB"], v.name, want)
				}
			}

			// Once the tunnel is gone, the patched address leads nowhere.
			client.Close()
			patched := map[string]string{"AWS_REGION": "eu-west-1"}
			for k, value := range variants(s)[0].env {
				patched[k], _, _ = connstr.Rewrite(value, local, public, connstr.DefaultPort(typ))
			}
			ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
			defer cancel()
			if out, err := handler(ctx, patched, nil); err == nil {
				t.Errorf("the tunnel is closed, yet the function reached the database through it: %s", out)
			}
		})
	}
}

func withRegion(env map[string]string) map[string]string {
	out := map[string]string{"AWS_REGION": "eu-west-1"}
	for k, v := range env {
		out[k] = v
	}
	return out
}

func invoke(t *testing.T, h cloudside.Handler, env map[string]string, req cloudside.Request) cloudside.Response {
	t.Helper()
	payload, _ := json.Marshal(req)
	out, err := h(t.Context(), env, payload)
	if err != nil {
		t.Fatalf("invoking with %v: %v", env, err)
	}
	var resp cloudside.Response
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatalf("response %s: %v", out, err)
	}
	return resp
}

// checkRedisDB reads the key straight from the server, in the database the URL names.
func checkRedisDB(t *testing.T, s *services.Server, patchedURL, key, want string) {
	t.Helper()
	opts, err := redis.ParseURL(patchedURL)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), Password: s.Password, DB: opts.DB})
	defer c.Close()
	got, err := c.Get(t.Context(), cloudside.Table+":"+key).Result()
	if err != nil || got != want {
		t.Errorf("redis database %d holds %q (%v), want %q", opts.DB, got, err, want)
	}
}

func openTunnel(t *testing.T, s *bore.Server, localPort int) (*bore.Client, connstr.HostPort) {
	t.Helper()
	c, err := bore.NewClient(bore.ClientConfig{Server: s.Addr().String(), LocalHost: "localhost", LocalPort: localPort})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	public, err := connstr.ParseHostPort(c.PublicAddr())
	if err != nil {
		t.Fatal(err)
	}
	return c, public
}
