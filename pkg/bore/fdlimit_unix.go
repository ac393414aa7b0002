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
	if lim.Cur+1 >= lim.Max { // at the hard limit, or where the Go runtime put it
		return lim.Cur, nil
	}
	raised := lim
	raised.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err != nil {
		return lim.Cur, fmt.Errorf("raising the open-file limit from %d to %d: %w", lim.Cur, lim.Max, err)
	}
	return raised.Cur, nil
}
