//go:build !unix

package bore

import (
	"io"
	"net"
	"sync/atomic"
)

// copyConn copies src to dst until src's EOF (nil error) or an error, counting in counter.
func copyConn(dst, src *net.TCPConn, counter *atomic.Int64) (int64, error) {
	return io.Copy(countingWriter{dst, counter}, src)
}

// countingWriter counts what it writes.
type countingWriter struct {
	w       io.Writer
	counter *atomic.Int64
}

func (c countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	count(c.counter, n)
	return n, err
}
