//go:build unix

package tunnel

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
)

// interrupt asks a process to stop the way a terminal would.
func interrupt(p *os.Process) error { return p.Signal(os.Interrupt) }

// detach makes cmd a session leader, outside the terminal's process group: it survives its parent and a ^C
// typed in the parent's terminal.
func detach(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setsid = true
}

// processAlive reports whether pid is a live process (a zombie waiting for its parent is not).
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	if err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	return !isZombie(pid)
}

// terminate asks pid to stop (SIGTERM) or, when force is set, kills it (SIGKILL).
func terminate(pid int, force bool) error {
	sig := syscall.SIGTERM
	if force {
		sig = syscall.SIGKILL
	}
	if err := syscall.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return nil
}
