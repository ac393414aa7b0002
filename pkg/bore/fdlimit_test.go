//go:build unix

package bore

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// fdLimitRoleEnv makes this test binary, started again, lower its soft limit, call RaiseOpenFileLimit and print
// the soft limit before and after (the Go runtime raises the limit at start-up, so only a process that lowered
// it itself can see RaiseOpenFileLimit at work).
const fdLimitRoleEnv = "STPTUNNEL_BORE_FDLIMIT_ROLE"

func init() {
	if os.Getenv(fdLimitRoleEnv) == "" {
		return
	}
	var lim syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	lowered := syscall.Rlimit{Cur: min(256, lim.Max), Max: lim.Max}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lowered); err != nil {
		os.Stdout.WriteString("error " + err.Error() + "\n")
		os.Exit(1)
	}
	got, err := RaiseOpenFileLimit()
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	if err != nil {
		os.Stdout.WriteString("error " + err.Error() + "\n")
		os.Exit(1)
	}
	os.Stdout.WriteString(strconv.FormatUint(uint64(lowered.Cur), 10) + " " + strconv.FormatUint(got, 10) + " " +
		strconv.FormatUint(uint64(lim.Cur), 10) + " " + strconv.FormatUint(uint64(lim.Max), 10) + "\n")
	os.Exit(0)
}

func TestRaiseOpenFileLimit(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run", "^$")
	cmd.Env = append(os.Environ(), fdLimitRoleEnv+"=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	f := strings.Fields(string(out)) // lowered, returned, soft after, hard
	if len(f) != 4 {
		t.Fatalf("output %q", out)
	}
	if f[1] != f[3] || f[2] != f[3] {
		t.Errorf("soft limit lowered to %s, then RaiseOpenFileLimit returned %s and left %s; want the hard limit %s",
			f[0], f[1], f[2], f[3])
	}
	// In this process the Go runtime has raised it already: nothing to do, the limit in force is returned.
	var lim syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	if got, err := RaiseOpenFileLimit(); err != nil || got != uint64(lim.Cur) {
		t.Errorf("RaiseOpenFileLimit() = %d, %v; want %d (the limit in force)", got, err, lim.Cur)
	}
}

func TestFileLimitWarning(t *testing.T) {
	if w := FileLimitWarning(1024); !strings.Contains(w, "1024") || !strings.Contains(w, "about 512 connections") {
		t.Errorf("FileLimitWarning(1024) = %q", w)
	}
	for _, limit := range []uint64{0, MinOpenFiles, 1 << 20} {
		if w := FileLimitWarning(limit); w != "" {
			t.Errorf("FileLimitWarning(%d) = %q, want none", limit, w)
		}
	}
}
