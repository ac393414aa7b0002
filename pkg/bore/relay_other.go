//go:build !unix

package bore

import (
	"io"
	"net"
)

// copyConn copies src to dst until src's EOF (nil error) or an error.
func copyConn(dst, src *net.TCPConn) (int64, error) {
	return io.Copy(dst, src)
}
