package services

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

const installPostgres = "apt-get install postgresql"

// postgresBinDirs are where Debian keeps each major version's programs, newest first.
func postgresBinDirs() []string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return pgMajor(b) - pgMajor(a) })
	return dirs
}

func pgMajor(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// StartPostgres initialises a cluster whose superuser is opts.User with opts.Password (scram-sha-256 over TCP),
// starts postgres on a free loopback port without unix sockets, and creates opts.Database.
func StartPostgres(ctx context.Context, opts Options) (*Server, error) {
	begin := time.Now()
	opts = opts.withDefaults()
	initdb, acc, err := findPostgres()
	if err != nil {
		return nil, err
	}
	// The server from the same directory as initdb: another version's would refuse the cluster.
	postgres := filepath.Join(filepath.Dir(initdb), "postgres")
	dir, err := newDir(KindPostgres, acc)
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	pwfile := filepath.Join(dir, "pwfile")
	if err := writeFile(pwfile, []byte(opts.Password+"\n"), acc); err != nil {
		return nil, err
	}
	if err := runOnce(ctx, acc, dir, initdb, "-D", data, "-N", "-U", opts.User, "--pwfile="+pwfile,
		"--auth=scram-sha-256", "-E", "UTF8", "--locale=C"); err != nil {
		return nil, fmt.Errorf("starting postgres: %w", err)
	}
	launchAt := func(port int) (*process, error) {
		return launch(acc, dir, sigintFastShutdown, postgres, "-D", data, "-p", strconv.Itoa(port),
			"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
			// A throw-away cluster: durability only costs time.
			"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
			"-c", "shared_buffers=16MB", "-c", "max_connections=40")
	}
	ping := func(ctx context.Context, port int) error {
		conn, err := pgx.Connect(ctx, postgresURL(opts, port, "postgres"))
		if err != nil {
			return err
		}
		return conn.Close(ctx)
	}
	s, err := startServer(ctx, begin, KindPostgres, opts, dir, launchAt, ping)
	if err != nil {
		return nil, err
	}
	if err := createPostgresDatabase(ctx, opts, s.Port); err != nil {
		s.Close()
		return nil, fmt.Errorf("starting postgres: %w", err)
	}
	s.Startup = time.Since(begin)
	return s, nil
}

// findPostgres finds initdb and who runs it, or says what is missing.
func findPostgres() (initdb string, acc account, err error) {
	if initdb, err = lookPath(KindPostgres, installPostgres, postgresBinDirs(), "initdb"); err != nil {
		return "", account{}, err
	}
	acc, err = accountFor(KindPostgres, "postgres")
	return initdb, acc, err
}

func createPostgresDatabase(ctx context.Context, opts Options, port int) error {
	conn, err := pgx.Connect(ctx, postgresURL(opts, port, "postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{opts.Database}.Sanitize()); err != nil {
		return fmt.Errorf("creating database %s: %w", opts.Database, err)
	}
	return nil
}

func postgresURL(opts Options, port int, database string) string {
	return "postgres://" + url.UserPassword(opts.User, opts.Password).String() + "@127.0.0.1:" + strconv.Itoa(port) +
		"/" + url.PathEscape(database) + "?sslmode=disable&connect_timeout=2"
}
