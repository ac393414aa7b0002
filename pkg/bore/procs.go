package bore

import "runtime"

// ClientProcs is the GOMAXPROCS that LimitClientProcs sets: one thread at a time runs the Go code of a process
// whose work is relaying a developer's tunnels.
//
// With more, each goroutine made ready (a visitor's Connection frame, a relay started, bytes arrived) wakes an
// idle thread to look for work, and a visitor's set-up costs context switches on every core; with one, the thread
// that readied a goroutine runs it next. Measured with the shipped binary in separate processes on 2 cores
// (docs/PERFORMANCE.md): the tunnel's set-up faster, its round trip and bulk throughput the same, and about 1 MB
// less resident memory with 1000 connections held. The relay's reads, writes and splices are non-blocking
// system calls, and a client's throughput is bounded by the link to its server, not by one core.
const ClientProcs = 1

// LimitClientProcs caps GOMAXPROCS at ClientProcs for a process that runs bore clients (`bore local`, a
// developer's session), unless the environment variable GOMAXPROCS (read with getenv) chose a value. It returns
// the GOMAXPROCS now in force. A server is left alone: it relays for many clients, and its host's cores are its
// own to choose (GOMAXPROCS=1 pays there too on a small host, see docs/PERFORMANCE.md).
func LimitClientProcs(getenv func(string) string) int {
	procs := runtime.GOMAXPROCS(0)
	if getenv("GOMAXPROCS") != "" || procs <= ClientProcs {
		return procs
	}
	runtime.GOMAXPROCS(ClientProcs)
	return ClientProcs
}
