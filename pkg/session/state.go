package session

import (
	"github.com/stptunnel/stptunnel/pkg/lambdaenv"
)

// State is a step's hold on the state dir: its lock (two sessions never share one, CONTRACT.md §5) and the journal
// it guards. Close releases the lock.
type State struct {
	Dir     string
	Journal *lambdaenv.Journal
	lock    *stateLock
}

// OpenState takes the state dir's lock, then opens its journal.
func OpenState(dir string) (*State, error) {
	lock, err := lockStateDir(dir)
	if err != nil {
		return nil, err
	}
	journal, err := lambdaenv.OpenJournal(dir)
	if err != nil {
		lock.release()
		return nil, err
	}
	return &State{Dir: dir, Journal: journal, lock: lock}, nil
}

// Close releases the lock. The journal stays on disk.
func (s *State) Close() {
	if s != nil {
		s.lock.release()
	}
}
