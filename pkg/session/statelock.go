package session

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/stptunnel/stptunnel/pkg/statedir"
)

// stateLock keeps two sessions out of one state dir (CONTRACT.md §5): the journal belongs to one session at a time.
// It is an advisory OS lock on STATE_DIR/lock, released by the OS when the process dies, so a crashed session
// never leaves a stale lock behind. The file holds the owner's pid for the error message.
type stateLock struct {
	f *os.File
}

var errLocked = errors.New("state dir is locked")

// lockStateDir takes the lock or says who holds it.
func lockStateDir(dir string) (*stateLock, error) {
	if err := statedir.Ensure(dir); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	if err := lockFile(f); err != nil {
		f.Close()
		owner := "another process"
		if b, rerr := os.ReadFile(path); rerr == nil {
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil {
				owner = fmt.Sprintf("process %d", pid)
			}
		}
		return nil, fmt.Errorf("%w: another stptunnel session (%s) is using %s; end it first or pass a different --state-dir", errLocked, owner, dir)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &stateLock{f: f}, nil
}

// release drops the lock. The file stays: removing it would race with a session taking it.
func (l *stateLock) release() {
	if l == nil || l.f == nil {
		return
	}
	_ = unlockFile(l.f)
	l.f.Close()
	l.f = nil
}
