package tunnel

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/stptunnel/stptunnel/pkg/connstr"
)

// dialable is where the engine reaches a local address from this machine: host.docker.internal names the host
// from inside a container, and 0.0.0.0 / :: are listen-everywhere addresses that not every platform dials.
func dialable(a connstr.HostPort) connstr.HostPort {
	switch a.Host {
	case "host.docker.internal":
		a.Host = "localhost"
	case "0.0.0.0":
		a.Host = "127.0.0.1"
	case "::":
		a.Host = "::1"
	}
	return a
}

// CheckLocal reports whether something accepts TCP connections on addr, within timeout.
func CheckLocal(ctx context.Context, addr string, timeout time.Duration) error {
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Err != nil {
			err = op.Err // "connection refused" reads better than the whole dial chain
		}
		return err
	}
	return conn.Close()
}

// checkLocals checks every tunnel's local service at once and joins the failures.
func checkLocals(ctx context.Context, tunnels []*tunnel, timeout time.Duration) error {
	errs := make([]error, len(tunnels))
	var wg sync.WaitGroup
	for i, t := range tunnels {
		wg.Go(func() {
			if err := CheckLocal(ctx, t.local.String(), timeout); err != nil {
				errs[i] = &LocalError{Resource: t.spec.Resource.Name, Address: t.spec.Resource.Address, Err: err}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
