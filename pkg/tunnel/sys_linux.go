package tunnel

import (
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"syscall"
)

// setChildAttrs makes an external bore die with the process that runs it, even when that one is killed.
func setChildAttrs(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}

// isZombie reads the process state from /proc: an orphan that exited stays a zombie until init reaps it.
func isZombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// pid (comm) state ...: comm may contain spaces and parentheses, so look after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && b[i+2] == 'Z'
}
