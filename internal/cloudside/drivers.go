package cloudside

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"strings"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

// Postgres is a function using pgx with the connection string (URL or key=value DSN) in variable.
func (c Cloud) Postgres(variable string) Handler {
	return func(ctx context.Context, env map[string]string, payload []byte) ([]byte, error) {
		return c.run(ctx, payload, "pgx", func(ctx context.Context, d *dialer, req Request) (Response, error) {
			value, err := c.env(env, variable, 5432)
			if err != nil {
				return Response{}, err
			}
			cfg, err := pgx.ParseConfig(value)
			if err != nil {
				return Response{}, fmt.Errorf("parsing %s: %w", variable, err)
			}
			cfg.DialFunc = d.DialContext
			conn, err := pgx.ConnectConfig(ctx, cfg)
			if err != nil {
				return Response{}, err
			}
			defer conn.Close(context.WithoutCancel(ctx))
			resp := Response{}
			for _, step := range []func() error{
				func() error {
					_, err := conn.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+Table+" (k text PRIMARY KEY, v text NOT NULL)")
					return err
				},
				func() error {
					_, err := conn.Exec(ctx, "INSERT INTO "+Table+" (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v", req.Key, req.Value)
					return err
				},
				func() error {
					return conn.QueryRow(ctx, "SELECT v FROM "+Table+" WHERE k = $1", req.Key).Scan(&resp.Value)
				},
				func() error {
					return conn.QueryRow(ctx, "SELECT 'PostgreSQL ' || current_setting('server_version')").Scan(&resp.Server)
				},
			} {
				if err := step(); err != nil {
					return Response{}, err
				}
			}
			return resp, nil
		})
	}
}

// MySQL is a function using go-sql-driver/mysql with the connection string in variable: a Go DSN
// (user:pass@tcp(host:port)/db?params) or a mysql:// / mariadb:// URL, as Node's drivers take.
func (c Cloud) MySQL(variable string) Handler {
	return func(ctx context.Context, env map[string]string, payload []byte) ([]byte, error) {
		return c.run(ctx, payload, "go-sql-driver/mysql", func(ctx context.Context, d *dialer, req Request) (Response, error) {
			value, err := c.env(env, variable, 3306)
			if err != nil {
				return Response{}, err
			}
			cfg, err := mysqlConfig(value)
			if err != nil {
				return Response{}, fmt.Errorf("parsing %s: %w", variable, err)
			}
			cfg.DialFunc = d.DialContext
			connector, err := mysql.NewConnector(cfg)
			if err != nil {
				return Response{}, err
			}
			db := sql.OpenDB(connector)
			defer db.Close()
			resp := Response{}
			for _, step := range []func() error{
				func() error {
					_, err := db.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS "+Table+" (k VARCHAR(191) PRIMARY KEY, v TEXT NOT NULL)")
					return err
				},
				func() error {
					_, err := db.ExecContext(ctx, "INSERT INTO "+Table+" (k, v) VALUES (?, ?) ON DUPLICATE KEY UPDATE v = VALUES(v)", req.Key, req.Value)
					return err
				},
				func() error {
					return db.QueryRowContext(ctx, "SELECT v FROM "+Table+" WHERE k = ?", req.Key).Scan(&resp.Value)
				},
				func() error { return db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&resp.Server) },
			} {
				if err := step(); err != nil {
					return Response{}, err
				}
			}
			return resp, nil
		})
	}
}

// mysqlConfig reads a Go MySQL DSN, or a mysql:// URL whose query holds the DSN's parameters.
func mysqlConfig(value string) (*mysql.Config, error) {
	scheme, rest, isURL := strings.Cut(value, "://")
	if !isURL || (scheme != "mysql" && scheme != "mariadb") {
		return mysql.ParseDSN(value)
	}
	u, err := url.Parse("mysql://" + rest)
	if err != nil {
		return nil, err
	}
	cfg := mysql.NewConfig()
	cfg.User = u.User.Username()
	cfg.Passwd, _ = u.User.Password()
	cfg.Net, cfg.Addr = "tcp", u.Host
	if u.Port() == "" {
		cfg.Addr = u.Host + ":3306"
	}
	cfg.DBName = strings.TrimPrefix(u.Path, "/")
	if u.RawQuery != "" {
		// The parameters are the DSN's, so let the driver read them as it would there.
		withParams, err := mysql.ParseDSN("/?" + u.RawQuery)
		if err != nil {
			return nil, err
		}
		withParams.User, withParams.Passwd, withParams.Net, withParams.Addr, withParams.DBName = cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName
		cfg = withParams
	}
	return cfg, nil
}

// Redis is a function using go-redis with the redis:// URL in variable (password, database number).
func (c Cloud) Redis(variable string) Handler {
	return func(ctx context.Context, env map[string]string, payload []byte) ([]byte, error) {
		return c.run(ctx, payload, "go-redis", func(ctx context.Context, d *dialer, req Request) (Response, error) {
			value, err := c.env(env, variable, 6379)
			if err != nil {
				return Response{}, err
			}
			opts, err := redis.ParseURL(value)
			if err != nil {
				return Response{}, fmt.Errorf("parsing %s: %w", variable, err)
			}
			opts.Dialer = d.DialContext
			opts.MaxRetries = -1
			client := redis.NewClient(opts)
			defer client.Close()
			key := Table + ":" + req.Key
			if err := client.Set(ctx, key, req.Value, 0).Err(); err != nil {
				return Response{}, err
			}
			got, err := client.Get(ctx, key).Result()
			if err != nil {
				return Response{}, err
			}
			info, err := client.Info(ctx, "server").Result()
			if err != nil {
				return Response{}, err
			}
			return Response{Value: got, DB: opts.DB, Server: "redis " + infoField(info, "redis_version")}, nil
		})
	}
}

func infoField(info, name string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			return v
		}
	}
	return ""
}
