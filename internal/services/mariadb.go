package services

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"github.com/go-sql-driver/mysql"
)

const installMariaDB = "apt-get install mariadb-server"

// innodbQuick makes InnoDB cheap to create and run: a throw-away server needs no durability.
var innodbQuick = []string{"--skip-log-bin", "--innodb-log-file-size=4M", "--innodb-buffer-pool-size=16M",
	"--innodb-flush-log-at-trx-commit=0", "--innodb-doublewrite=0", "--innodb-flush-method=nosync"}

// StartMariaDB installs the system tables (root reachable only through the server's unix socket, without a
// password), starts mariadbd on a free loopback port, then creates opts.Database and the user opts.User@'%'
// with opts.Password and every privilege on that database.
func StartMariaDB(ctx context.Context, opts Options) (*Server, error) {
	begin := time.Now()
	opts = opts.withDefaults()
	installDB, mariadbd, acc, err := findMariaDB()
	if err != nil {
		return nil, err
	}
	dir, err := newDir(KindMariaDB, acc)
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	socket := filepath.Join(dir, "mysqld.sock")
	install := append([]string{"--no-defaults", "--datadir=" + data, "--auth-root-authentication-method=normal",
		"--skip-test-db", "--skip-name-resolve"}, innodbQuick...)
	if err := runOnce(ctx, acc, dir, installDB, install...); err != nil {
		return nil, fmt.Errorf("starting mariadb: %w", err)
	}
	launchAt := func(port int) (*process, error) {
		args := append([]string{"--no-defaults", "--datadir=" + data, "--port=" + strconv.Itoa(port),
			"--bind-address=127.0.0.1", "--socket=" + socket, "--pid-file=" + filepath.Join(dir, "mysqld.pid"),
			"--skip-name-resolve"}, innodbQuick...)
		return launch(acc, dir, sigterm, mariadbd, args...)
	}
	root := mysql.NewConfig()
	root.User, root.Net, root.Addr = "root", "unix", socket
	root.InterpolateParams = true
	root.Timeout = 2 * time.Second
	ping := func(ctx context.Context, _ int) error {
		db, err := sql.Open("mysql", root.FormatDSN())
		if err != nil {
			return err
		}
		defer db.Close()
		return db.PingContext(ctx)
	}
	s, err := startServer(ctx, begin, KindMariaDB, opts, dir, launchAt, ping)
	if err != nil {
		return nil, err
	}
	if err := createMariaDBUser(ctx, root, opts); err != nil {
		s.Close()
		return nil, fmt.Errorf("starting mariadb: %w", err)
	}
	s.Startup = time.Since(begin)
	return s, nil
}

// findMariaDB finds the programs and who runs them, or says what is missing.
func findMariaDB() (installDB, mariadbd string, acc account, err error) {
	if installDB, err = lookPath(KindMariaDB, installMariaDB, nil, "mariadb-install-db", "mysql_install_db"); err != nil {
		return "", "", account{}, err
	}
	if mariadbd, err = lookPath(KindMariaDB, installMariaDB, []string{"/usr/sbin", "/usr/libexec"}, "mariadbd", "mysqld"); err != nil {
		return "", "", account{}, err
	}
	acc, err = accountFor(KindMariaDB, "mysql")
	return installDB, mariadbd, acc, err
}

func createMariaDBUser(ctx context.Context, root *mysql.Config, opts Options) error {
	db, err := sql.Open("mysql", root.FormatDSN())
	if err != nil {
		return err
	}
	defer db.Close()
	ident := "`" + opts.Database + "`"
	for _, stmt := range []struct {
		query string
		args  []any
	}{
		{"CREATE DATABASE " + ident, nil},
		// Placeholders are interpolated by the driver, which escapes the password's quotes and backslashes.
		{"CREATE USER ?@'%' IDENTIFIED BY ?", []any{opts.User, opts.Password}},
		{"GRANT ALL ON " + ident + ".* TO ?@'%'", []any{opts.User}},
	} {
		if _, err := db.ExecContext(ctx, stmt.query, stmt.args...); err != nil {
			return fmt.Errorf("%s: %w", stmt.query, err)
		}
	}
	return nil
}
