package bore

import (
	"net"
	"runtime"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// relaySplice selects splice(2) for relayed bytes; false copies through pooled buffers (benchmarks compare both).
var relaySplice = true

func copyRaw(dst *net.TCPConn, rc, wc syscall.RawConn) (int64, error) {
	if relaySplice {
		return copySplice(rc, wc)
	}
	return copyBuffered(dst, rc)
}

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

func splice(from, to, n int) (int, error) {
	return ignoringEINTR(func() (int, error) {
		m, err := unix.Splice(from, nil, to, nil, n, unix.SPLICE_F_MOVE|unix.SPLICE_F_NONBLOCK)
		return int(m), err
	})
}

// copySplice copies what src (rc) has once it is readable into a pooled pipe, then from the pipe to dst (wc).
func copySplice(rc, wc syscall.RawConn) (int64, error) {
	var written int64
	for {
		var (
			p    *splicePipe
			n    int
			rerr error
		)
		err := rc.Read(func(fd uintptr) bool {
			if p, rerr = getPipe(); rerr != nil {
				return true
			}
			n, rerr = splice(int(fd), p.w, maxSplice)
			if rerr == unix.EAGAIN { // nothing to read: the pipe goes back while we wait
				pipePool.Put(p)
				p = nil
				return false
			}
			return true
		})
		if err == nil {
			err = rerr
		}
		if err != nil || n <= 0 { // n == 0: EOF
			if p != nil {
				pipePool.Put(p)
			}
			return written, err
		}
		for n > 0 && err == nil {
			var m int
			var werr error
			err = wc.Write(func(fd uintptr) bool {
				m, werr = splice(p.r, int(fd), n)
				return werr != unix.EAGAIN
			})
			if err == nil {
				err = werr
			}
			if m > 0 {
				n -= m
				written += int64(m)
			}
		}
		if err != nil {
			p.close() // bytes may be left in it
			return written, err
		}
		pipePool.Put(p)
	}
}
