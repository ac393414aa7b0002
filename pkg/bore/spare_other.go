//go:build !unix

package bore

import "net"

// spareSupported is false where a spare cannot be checked before use: no spare is dialled.
const spareSupported = false

func idleAndOpen(*net.TCPConn) bool { return false }
