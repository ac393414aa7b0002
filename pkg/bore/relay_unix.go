//go:build unix

package bore

import (
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// relayBufferSize is the size of the relay's pooled buffers.
const relayBufferSize = 32 << 10

// bufPool holds the relay's buffers, taken only once bytes are there to read.
var bufPool = sync.Pool{New: func() any { return new([relayBufferSize]byte) }}

// rawIO is read(2) or write(2) as a raw system call: the descriptors are non-blocking, so it never blocks, and
// the runtime's system-call bookkeeping (which wakes its monitor thread after an idle spell) is spared.
func rawIO(trap uintptr, fd int, p []byte) (int, error) {
	for {
		n, _, errno := unix.RawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
		switch errno {
		case 0:
			return int(n), nil
		case unix.EINTR:
			continue
		}
		return 0, errno
	}
}

// bufferCopier copies one direction through pooled buffers; its read and write functions are made once, so a
// chunk costs no allocation.
type bufferCopier struct {
	buf     *[relayBufferSize]byte
	n, off  int // bytes in buf, and how many of them are written
	err     error
	readFn  func(fd uintptr) bool
	writeFn func(fd uintptr) bool
}

func (c *bufferCopier) read(fd uintptr) bool {
	c.buf = bufPool.Get().(*[relayBufferSize]byte)
	c.n, c.err = rawIO(unix.SYS_READ, int(fd), c.buf[:])
	if c.err == unix.EAGAIN { // nothing to read: the buffer goes back while we wait
		bufPool.Put(c.buf)
		c.buf = nil
		return false
	}
	return true
}

func (c *bufferCopier) write(fd uintptr) bool {
	var m int
	m, c.err = rawIO(unix.SYS_WRITE, int(fd), c.buf[c.off:c.n])
	c.off += m
	return c.err != unix.EAGAIN
}

// chunk waits until src (rc) is readable, reads what is there into a pooled buffer and writes it all to dst
// (wc). It returns how many bytes it moved: 0 and no error at src's EOF.
func (c *bufferCopier) chunk(rc, wc syscall.RawConn) (int, error) {
	c.buf, c.n, c.off, c.err = nil, 0, 0, nil
	err := rc.Read(c.readFn)
	if err == nil {
		err = c.err
	}
	if err != nil || c.n <= 0 {
		if c.buf != nil {
			bufPool.Put(c.buf)
		}
		return 0, err
	}
	for c.off < c.n && err == nil {
		if err = wc.Write(c.writeFn); err == nil {
			err = c.err
		}
	}
	bufPool.Put(c.buf)
	return c.off, err
}

func newBufferCopier() *bufferCopier {
	c := &bufferCopier{}
	c.readFn, c.writeFn = c.read, c.write
	return c
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
// else — then moves what arrived through a pooled buffer, which costs less than a pipe for a few bytes, and once a
// read fills a whole buffer (bulk), on Linux with splice(2) for as long as the chunks stay that large. It is one
// frame over the chunk's: a relay's goroutine fits the smallest stack (2 kB).
func copyConn(dst, src *net.TCPConn, counter *atomic.Int64) (int64, error) {
	rc, err := src.SyscallConn()
	if err != nil {
		return 0, err
	}
	wc, err := dst.SyscallConn()
	if err != nil {
		return 0, err
	}
	useSplice := canSplice && relaySplice
	bc := newBufferCopier()
	var sc *spliceCopier // made at the first bulk chunk: most connections never need it
	var written int64
	bulk := false
	for {
		var n int
		if bulk {
			if sc == nil {
				sc = newSpliceCopier()
			}
			n, err = sc.chunk(rc, wc)
		} else {
			n, err = bc.chunk(rc, wc)
		}
		written += int64(n)
		count(counter, n)
		if err != nil || n == 0 {
			return written, err
		}
		bulk = useSplice && n >= relayBufferSize
	}
}
