//go:build unix && !linux

package bore

import "syscall"

// canSplice: no splice(2) here; bulk goes through pooled buffers too.
const canSplice = false

// spliceCopier is never made where canSplice is false.
type spliceCopier struct{}

func newSpliceCopier() *spliceCopier { panic("bore: no splice on this system") }

func (*spliceCopier) chunk(rc, wc syscall.RawConn) (int, error) {
	panic("bore: no splice on this system")
}
