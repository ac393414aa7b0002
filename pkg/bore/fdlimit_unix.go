//go:build unix

package bore

import (
	"fmt"
	"syscall"
)

func raiseOpenFileLimit() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("reading the open-file limit: %w", err)
	}
	// uint64 conversions: the fields are int64 on some systems (FreeBSD), uint64 on others.
	cur, limit := uint64(lim.Cur), uint64(lim.Max)
	if cur+1 >= limit { // at the hard limit, or where the Go runtime put it
		return cur, nil
	}
	raised := lim
	raised.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err != nil {
		return cur, fmt.Errorf("raising the open-file limit from %d to %d: %w", cur, limit, err)
	}
	return limit, nil
}
