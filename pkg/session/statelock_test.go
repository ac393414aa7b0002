package session

import (
	"errors"
	"strings"
	"testing"
)

func TestStateLockExcludesASecondSession(t *testing.T) {
	dir := t.TempDir()
	first, err := lockStateDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = lockStateDir(dir)
	if !errors.Is(err, errLocked) || !strings.Contains(err.Error(), "another stptunnel session") {
		t.Fatalf("second lock = %v, want errLocked", err)
	}
	first.release()
	again, err := lockStateDir(dir)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	again.release()
}
