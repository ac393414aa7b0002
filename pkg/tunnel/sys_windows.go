//go:build windows

package tunnel

import (
	"os"
	"os/exec"
	"syscall"

	"golang.org/x/sys/windows"
)

// interrupt stops a process: Windows has no signal a console program can be sent from outside its console.
func interrupt(p *os.Process) error { return p.Kill() }

func setChildAttrs(*exec.Cmd) {}

// detach starts cmd without a console and in its own process group, so it outlives its parent and ^C.
func detach(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.CreationFlags |= windows.CREATE_NEW_PROCESS_GROUP | windows.DETACHED_PROCESS
}

// processAlive reports whether pid is a running process.
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	h, err := windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION|windows.SYNCHRONIZE, false, uint32(pid))
	if err != nil {
		return false
	}
	defer windows.CloseHandle(h)
	ev, err := windows.WaitForSingleObject(h, 0)
	return err == nil && ev == uint32(windows.WAIT_TIMEOUT)
}

// terminate ends pid. Windows offers no polite request to a detached process, so both modes kill it.
func terminate(pid int, _ bool) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return nil // already gone
	}
	defer p.Release()
	if err := p.Kill(); err != nil && processAlive(pid) {
		return err
	}
	return nil
}

// processStartTime is unknown on this platform: the pid alone identifies a detached session's holder.
func processStartTime(int) uint64 { return 0 }
