//go:build unix

package bore

import (
	"net"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// relayBufferSize is the size of copyBuffered's pooled buffers.
const relayBufferSize = 32 << 10

// bufPool holds copyBuffered's buffers, taken only once bytes are there to read.
var bufPool = sync.Pool{New: func() any { return new([relayBufferSize]byte) }}

// copyBuffered copies what src (rc) has once it is readable, through a pooled buffer, to dst.
func copyBuffered(dst *net.TCPConn, rc syscall.RawConn) (int64, error) {
	var written int64
	for {
		var (
			buf  *[relayBufferSize]byte
			n    int
			rerr error
		)
		err := rc.Read(func(fd uintptr) bool {
			buf = bufPool.Get().(*[relayBufferSize]byte)
			n, rerr = ignoringEINTR(func() (int, error) { return unix.Read(int(fd), buf[:]) })
			if rerr == unix.EAGAIN {
				bufPool.Put(buf)
				buf = nil
				return false
			}
			return true
		})
		if err == nil {
			err = rerr
		}
		if err != nil || n <= 0 { // n == 0: EOF
			if buf != nil {
				bufPool.Put(buf)
			}
			return written, err
		}
		m, err := dst.Write(buf[:n])
		bufPool.Put(buf)
		written += int64(m)
		if err != nil {
			return written, err
		}
	}
}

func ignoringEINTR(f func() (int, error)) (int, error) {
	for {
		n, err := f()
		if err != unix.EINTR {
			return n, err
		}
	}
}

// copyConn copies src to dst until src's EOF (nil error) or an error. On Unix it waits for src to be readable
// without holding a buffer or a pipe — a relayed connection that is idle costs its goroutine's stack and nothing
// else — then moves what arrived with splice(2) on Linux (zero copy) or through a pooled buffer.
func copyConn(dst, src *net.TCPConn) (int64, error) {
	rc, err := src.SyscallConn()
	if err != nil {
		return 0, err
	}
	wc, err := dst.SyscallConn()
	if err != nil {
		return 0, err
	}
	return copyRaw(dst, rc, wc)
}
