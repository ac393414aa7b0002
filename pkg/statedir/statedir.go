// Package statedir creates stptunnel's state directory (--state-dir, default .stptunnel): the journal, the lock and
// the record of a detached session live there, and the journal and the record hold connection strings, passwords
// included. The directory is usually created inside an application's repository, so it keeps itself out of version
// control the way pytest's and ruff's caches do: it holds a .gitignore that ignores everything, itself included,
// whatever the repository's own ignore rules say. The repository's .gitignore is never read nor written.
//
// Every place that creates the state directory goes through Ensure.
//
// API: the tool's own; it may change.
package statedir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/stptunnel/stptunnel/pkg/doc"
)

// DefaultName is the state directory's name when --state-dir is not given.
const DefaultName = ".stptunnel"

// IgnoreFile is the name of the file that keeps the directory out of git.
const IgnoreFile = ".gitignore"

// IgnoreContent is what Ensure writes to IgnoreFile: one line saying why, then the pattern that ignores everything.
const IgnoreContent = "# Written by stptunnel: this directory holds session state with connection strings (passwords included), never commit it.\n*\n"

// Ensure makes dir a state directory: it creates it (mode 0700, with its parents) if it does not exist, and writes
// IgnoreFile into it (mode 0600, atomically) when it has none. An existing IgnoreFile is left as it is.
//
// An existing directory gets the file only when it is plainly stptunnel's: named DefaultName, or empty. A directory
// that already holds other things (--state-dir . in a project) is never given a .gitignore that would hide the
// whole project from git.
func Ensure(dir string) error {
	created, err := mkdir(dir)
	if err != nil {
		return fmt.Errorf("creating the state dir %s: %w", dir, err)
	}
	path := filepath.Join(dir, IgnoreFile)
	switch _, err := os.Lstat(path); {
	case err == nil:
		return nil // ours from an earlier run, or the user's: either way not ours to change
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("checking %s: %w", path, err)
	}
	if !created {
		owned, err := ownedByUs(dir)
		if err != nil {
			return fmt.Errorf("reading the state dir %s: %w", dir, err)
		}
		if !owned {
			return nil
		}
	}
	if err := doc.WriteFileAtomic(path, []byte(IgnoreContent)); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// mkdir creates dir unless it exists, and reports whether this call created it.
func mkdir(dir string) (created bool, err error) {
	st, err := os.Stat(dir)
	if err == nil {
		if !st.IsDir() {
			return false, fmt.Errorf("%s is not a directory", dir)
		}
		return false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, err
	}
	return true, nil
}

// ownedByUs reports whether an existing directory without IgnoreFile is one stptunnel may give it: the default
// state dir (made by a version that wrote no IgnoreFile), or a directory holding nothing but what a write of
// IgnoreFile interrupted by a crash can leave.
func ownedByUs(dir string) (bool, error) {
	if filepath.Base(filepath.Clean(dir)) == DefaultName {
		return true, nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false, err
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), doc.AtomicTempPrefix(IgnoreFile)) {
			return false, nil
		}
	}
	return true, nil
}
