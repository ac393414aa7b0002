package bore

import (
	"runtime"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// canSplice: bulk moves with splice(2), no copy through user space.
const canSplice = true

// maxSplice is how much one splice moves at most, and the size asked for the pipes (as Go's own splice does).
const maxSplice = 1 << 20

// splicePipe is a pipe the bytes of one read pass through, socket → pipe → socket, without entering user space.
type splicePipe struct{ r, w int }

// pipePool holds the pipes of copySplice. A pipe is taken once bytes are there to read and returned once they
// are written on, so only connections moving bytes at this instant hold one (Go's io.Copy holds one per
// direction for the whole connection: two file descriptors each, four per relayed connection and side).
var pipePool sync.Pool

func getPipe() (*splicePipe, error) {
	if p, ok := pipePool.Get().(*splicePipe); ok {
		return p, nil
	}
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		return nil, err
	}
	p := &splicePipe{r: fds[0], w: fds[1]}
	_, _ = unix.FcntlInt(uintptr(p.w), unix.F_SETPIPE_SZ, maxSplice) // a smaller pipe only means more splices
	runtime.SetFinalizer(p, (*splicePipe).close)                     // dropped by the pool
	return p, nil
}

func (p *splicePipe) close() {
	runtime.SetFinalizer(p, nil)
	unix.Close(p.r)
	unix.Close(p.w)
}

// splice moves up to n bytes between two non-blocking descriptors. It is a raw system call — it never blocks,
// so the scheduler need not know of it — which spares each relayed chunk the runtime's system-call bookkeeping
// (a relay ping-ponging small messages otherwise wakes the runtime's monitor thread on every call).
func splice(from, to, n int) (int, error) {
	for {
		m, _, errno := unix.RawSyscall6(unix.SYS_SPLICE, uintptr(from), 0, uintptr(to), 0, uintptr(n),
			unix.SPLICE_F_MOVE|unix.SPLICE_F_NONBLOCK)
		switch errno {
		case 0:
			return int(m), nil
		case unix.EINTR:
			continue
		}
		return 0, errno
	}
}

// spliceCopier copies one direction through pooled pipes; its read and write functions are made once, so a
// chunk costs no allocation.
type spliceCopier struct {
	p       *splicePipe
	n       int // bytes in p
	err     error
	readFn  func(fd uintptr) bool
	writeFn func(fd uintptr) bool
}

// read fills a pipe from the readable src, or gives the pipe back and asks to wait.
func (c *spliceCopier) read(fd uintptr) bool {
	if c.p, c.err = getPipe(); c.err != nil {
		return true
	}
	c.n, c.err = splice(int(fd), c.p.w, maxSplice)
	if c.err == unix.EAGAIN { // nothing to read: the pipe goes back while we wait
		pipePool.Put(c.p)
		c.p = nil
		return false
	}
	return true
}

// write drains the pipe into dst as far as it takes, or asks to wait until dst is writable.
func (c *spliceCopier) write(fd uintptr) bool {
	var m int
	m, c.err = splice(c.p.r, int(fd), c.n)
	c.n -= m
	return c.err != unix.EAGAIN
}

func newSpliceCopier() *spliceCopier {
	c := &spliceCopier{}
	c.readFn, c.writeFn = c.read, c.write
	return c
}

// chunk waits until src (rc) is readable, splices what is there into a pooled pipe and from the pipe to dst
// (wc). It returns how many bytes it moved: 0 and no error at src's EOF.
func (c *spliceCopier) chunk(rc, wc syscall.RawConn) (int, error) {
	c.p, c.n, c.err = nil, 0, nil
	err := rc.Read(c.readFn)
	if err == nil {
		err = c.err
	}
	if err != nil || c.n <= 0 {
		if c.p != nil {
			pipePool.Put(c.p)
		}
		return 0, err
	}
	moved := 0
	for c.n > 0 && err == nil {
		before := c.n
		if err = wc.Write(c.writeFn); err == nil {
			err = c.err
		}
		moved += before - c.n
	}
	if err != nil {
		c.p.close() // bytes may be left in it
		return moved, err
	}
	pipePool.Put(c.p)
	return moved, nil
}
