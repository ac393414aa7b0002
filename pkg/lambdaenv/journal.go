package lambdaenv

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/stptunnel/stptunnel/pkg/doc"
	"github.com/stptunnel/stptunnel/pkg/statedir"
)

// JournalFile is the journal's name inside the state directory.
const JournalFile = "journal.json"

// Journal is STATE_DIR/journal.json: what every patched function looked like before the session, so that
// `env restore` can finish a session that crashed or was killed at any instant. It is rewritten atomically (temp
// file, fsync, rename; doc.WriteFileAtomic) with mode 0600 on every change, and its methods are safe for concurrent
// use: writes from concurrent workers are serialised.
//
// The file is a document (DESIGN.md §3) holding only "patches", so `stptunnel env restore < journal.json` also
// works. Each patch carries two fields the document does not define:
//
//	{"stptunnel": "v1", "patches": [
//	  {"function": "api", "arn": "arn:aws:lambda:eu-west-1:123456789012:function:api", "region": "eu-west-1",
//	   "state": "pending", "revision": "…",
//	   "changes": [{"env": "DB", "existed": true, "before": "postgres://…@localhost:5432/app",
//	                "after": "postgres://…@bore.pub:40001/app", "superseded": ["postgres://…@bore.pub:39999/app"]}]}]}
//
// state is pending from just before the update until the update is accepted, then applied. superseded lists the
// values earlier patches of the session wrote to the key and that may still be live while a re-patch is pending:
// restore treats them as ours too.
type Journal struct {
	path string

	mu      sync.Mutex
	entries []Entry
}

// Entry is the journal's record of one function.
type Entry struct {
	Function string   `json:"function"`
	ARN      string   `json:"arn"`
	Region   string   `json:"region,omitempty"`
	State    string   `json:"state"` // doc.PatchPending | doc.PatchApplied
	Revision string   `json:"revision,omitempty"`
	Changes  []Change `json:"changes"`
}

// Change is one journalled key: the document's change plus the values earlier patches wrote (see Journal).
type Change struct {
	doc.Change
	Superseded []string `json:"superseded,omitempty"`
}

// ours reports whether value is one the session wrote to the key.
func (c Change) ours(value string) bool {
	return value == c.After || slices.Contains(c.Superseded, value)
}

// Patch is the entry as the document's "patches" item.
func (e Entry) Patch() doc.Patch {
	p := doc.Patch{Function: e.Function, ARN: e.ARN, State: e.State, Revision: e.Revision, Changes: []doc.Change{}}
	for _, c := range e.Changes {
		p.Changes = append(p.Changes, c.Change)
	}
	return p
}

// EntryFromPatch turns a document's patch into an entry, for a restore from the document. region may be "".
func EntryFromPatch(p doc.Patch, region string) Entry {
	e := Entry{Function: p.Function, ARN: p.ARN, Region: region, State: p.State, Revision: p.Revision}
	for _, c := range p.Changes {
		e.Changes = append(e.Changes, Change{Change: c})
	}
	return e
}

type journalFile struct {
	Version string  `json:"stptunnel"`
	Patches []Entry `json:"patches"`
}

// OpenJournal opens STATE_DIR/journal.json, reading what a previous session left; the directory (statedir.Ensure)
// and file are created on the first write.
func OpenJournal(dir string) (*Journal, error) {
	j := &Journal{path: filepath.Join(dir, JournalFile)}
	b, err := os.ReadFile(j.path)
	if errors.Is(err, fs.ErrNotExist) {
		return j, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the journal: %w", err)
	}
	var f journalFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("reading the journal %s: %w (it is JSON; repair or remove it once the functions are checked)", j.path, err)
	}
	if f.Version != doc.Version {
		return nil, fmt.Errorf("reading the journal %s: unknown version %q", j.path, f.Version)
	}
	j.entries = f.Patches
	return j, nil
}

// Path is the journal file's path.
func (j *Journal) Path() string { return j.path }

// Entries returns a copy of every entry, sorted by function name, so that concurrent patches journal in a stable order.
func (j *Journal) Entries() []Entry {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := make([]Entry, len(j.entries))
	for i, e := range j.entries {
		out[i] = e.clone()
	}
	return out
}

// Get returns the entry of the function with this ARN.
func (j *Journal) Get(arn string) (Entry, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if i := j.index(arn); i >= 0 {
		return j.entries[i].clone(), true
	}
	return Entry{}, false
}

// Put records e, replacing the entry with the same ARN, and writes the journal before returning.
func (j *Journal) Put(e Entry) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	e = e.clone()
	if i := j.index(e.ARN); i >= 0 {
		j.entries[i] = e
	} else {
		j.entries = append(j.entries, e)
		slices.SortStableFunc(j.entries, func(a, b Entry) int { return strings.Compare(a.Function, b.Function) })
	}
	return j.write()
}

// Remove forgets the function with this ARN; the journal file is removed when no entry is left.
func (j *Journal) Remove(arn string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	i := j.index(arn)
	if i < 0 {
		return nil
	}
	j.entries = slices.Delete(j.entries, i, i+1)
	return j.write()
}

// Len is the number of functions the journal holds.
func (j *Journal) Len() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.entries)
}

func (j *Journal) index(arn string) int {
	return slices.IndexFunc(j.entries, func(e Entry) bool { return sameFunction(e.ARN, arn) })
}

// write saves the entries; callers hold j.mu. An empty journal is no file, so that a finished session leaves
// nothing behind.
func (j *Journal) write() error {
	if len(j.entries) == 0 {
		if err := os.Remove(j.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("clearing the journal: %w", err)
		}
		return nil
	}
	b, err := json.MarshalIndent(journalFile{Version: doc.Version, Patches: j.entries}, "", "  ")
	if err != nil {
		return fmt.Errorf("writing the journal: %w", err)
	}
	if err := statedir.Ensure(filepath.Dir(j.path)); err != nil {
		return fmt.Errorf("writing the journal: %w", err)
	}
	if err := doc.WriteFileAtomic(j.path, append(b, '\n')); err != nil {
		return fmt.Errorf("writing the journal: %w", err)
	}
	return nil
}

func (e Entry) clone() Entry {
	e.Changes = slices.Clone(e.Changes)
	for i := range e.Changes {
		e.Changes[i].Superseded = slices.Clone(e.Changes[i].Superseded)
	}
	return e
}

// sameFunction compares two function references: ARNs, or a name with an ARN ending in ":function:NAME".
func sameFunction(a, b string) bool {
	if a == b {
		return true
	}
	return functionName(a) == functionName(b) && (!strings.HasPrefix(a, "arn:") || !strings.HasPrefix(b, "arn:"))
}

// functionName is the bare name of a function reference (name, partial or full ARN).
func functionName(ref string) string {
	if i := strings.Index(ref, ":function:"); i >= 0 {
		ref = ref[i+len(":function:"):]
	}
	name, _, _ := strings.Cut(ref, ":")
	return name
}
