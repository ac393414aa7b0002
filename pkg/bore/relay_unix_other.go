//go:build unix && !linux

package bore

import (
	"sync/atomic"
	"syscall"
)

func copyRaw(rc, wc syscall.RawConn, counter *atomic.Int64) (int64, error) {
	return copyBuffered(rc, wc, counter)
}
