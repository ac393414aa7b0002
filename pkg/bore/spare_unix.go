//go:build unix

package bore

import (
	"net"

	"golang.org/x/sys/unix"
)

const spareSupported = true

// idleAndOpen reports whether conn has nothing to read and is not closed by the peer: a spare the server has
// not dropped, and that it has sent nothing on.
func idleAndOpen(conn *net.TCPConn) bool {
	rc, err := conn.SyscallConn()
	if err != nil {
		return false
	}
	open := false
	err = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		_, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		open = err == unix.EAGAIN
		return true
	})
	return err == nil && open
}
