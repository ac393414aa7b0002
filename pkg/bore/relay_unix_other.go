//go:build unix && !linux

package bore

import "syscall"

func copyRaw(rc, wc syscall.RawConn) (int64, error) {
	return copyBuffered(rc, wc)
}
