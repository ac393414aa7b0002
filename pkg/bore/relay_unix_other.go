//go:build unix && !linux

package bore

import (
	"net"
	"syscall"
)

func copyRaw(dst *net.TCPConn, rc, _ syscall.RawConn) (int64, error) {
	return copyBuffered(dst, rc)
}
