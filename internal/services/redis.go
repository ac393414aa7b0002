package services

import (
	"context"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

const installRedis = "apt-get install redis-server"

// findRedis finds redis-server, or says it is missing.
func findRedis() (string, error) {
	return lookPath(KindRedis, installRedis, []string{"/usr/bin", "/usr/sbin"}, "redis-server")
}

// StartRedis starts redis-server on a free loopback port with opts.Password as requirepass, no persistence, its
// working directory in the server's own directory.
func StartRedis(ctx context.Context, opts Options) (*Server, error) {
	begin := time.Now()
	opts = opts.withDefaults()
	redisServer, err := findRedis()
	if err != nil {
		return nil, err
	}
	self := account{uid: -1, gid: -1}
	dir, err := newDir(KindRedis, self)
	if err != nil {
		return nil, err
	}
	launchAt := func(port int) (*process, error) {
		return launch(self, dir, sigterm, redisServer, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--dir", dir, "--save", "", "--appendonly", "no", "--requirepass", opts.Password,
			"--daemonize", "no", "--logfile", "")
	}
	ping := func(ctx context.Context, port int) error {
		c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port), Password: opts.Password,
			MaxRetries: -1, DialTimeout: 2 * time.Second})
		defer c.Close()
		return c.Ping(ctx).Err()
	}
	return startServer(ctx, begin, KindRedis, opts, dir, launchAt, ping)
}
