//go:build unix && !linux

package tunnel

import "os/exec"

func setChildAttrs(*exec.Cmd) {}

func isZombie(int) bool { return false }

// processStartTime is unknown on this platform: the pid alone identifies a detached session's holder.
func processStartTime(int) uint64 { return 0 }
