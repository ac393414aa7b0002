package bore

import "fmt"

// MinOpenFiles is the open-file limit under which FileLimitWarning warns: each relayed connection holds two file
// descriptors on each side (the visitor's or the service's, and the one to the other side), so a limit of 4096
// carries about 2000 connections at once — an ordinary burst of Lambda cold starts or a load test needs that.
const MinOpenFiles = 4096

// RaiseOpenFileLimit raises this process's soft limit on open files (RLIMIT_NOFILE) to its hard limit, as
// servers commonly do, and returns the limit now in force (0 where the system has no such limit). The Go runtime
// already raises it at start-up (to the hard limit minus one, restoring the original for child processes); this
// only sets it when that did not happen, so child processes keep the limit they would have had.
func RaiseOpenFileLimit() (uint64, error) {
	return raiseOpenFileLimit()
}

// FileLimitWarning says what limit bounds a server's or a client's concurrent connections, or "" when limit is
// enough (at least MinOpenFiles) or unknown (0).
func FileLimitWarning(limit uint64) string {
	if limit == 0 || limit >= MinOpenFiles {
		return ""
	}
	return fmt.Sprintf("the open-file limit is %d (the hard limit): about %d connections can be relayed at once, "+
		"further visitors fail; raise the hard limit (ulimit -Hn, or LimitNOFILE= for a systemd service) to at least %d",
		limit, limit/2, MinOpenFiles)
}
