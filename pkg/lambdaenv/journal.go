package lambdaenv

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
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
// file, fsync, rename; doc.WriteFileAtomic) with mode 0600, and its methods are safe for concurrent use.
//
// Writes are group-committed: Put and Remove return once a write that contains their change is on disk, and the
// changes made while a write is in flight all go into the next one, so N concurrent Puts cost far fewer than N
// fsyncs (one, while a write is in flight, for all the functions that queued behind it). Stage and StageRemove
// change the entries without waiting: their changes reach the disk with the next write, at the latest with Sync.
// Patch stages each pending entry when it has computed the function's new variables and makes it durable right
// before the update is sent, once the update's turn under the control-plane quota has come (CONTRACT.md §5: on disk
// before each UpdateFunctionConfiguration): the reads run ahead of the paced updates, so the first of those commits
// writes the pending entries of every function read meanwhile and the next ones find theirs on disk already. The
// applied marks and the removals after a restore are staged and synced once per Patch or Restore, since a crash
// before they reach the disk leaves a pending entry (which restore finishes) or an entry already restored (which
// restore finds not-needed).
//
// The file is a document (CONTRACT.md §2) holding only "session" (the session that patched last) and "patches", so
// `stptunnel env restore < journal.json` also works. Each patch carries fields the document does not define:
//
//	{"stptunnel": "v1", "session": {"id": "3f9c2a71d04e", "by": "ana@laptop", "started": "2026-03-01T10:00:00Z"},
//	 "patches": [
//	  {"function": "api", "arn": "arn:aws:lambda:eu-west-1:123456789012:function:api", "region": "eu-west-1",
//	   "session": "3f9c2a71d04e", "state": "pending", "revision": "…",
//	   "changes": [{"env": "DB", "existed": true, "before": "postgres://…@localhost:5432/app",
//	                "after": "postgres://…@bore.pub:40001/app", "superseded": ["postgres://…@bore.pub:39999/app"]}]}]}
//
// A patch's session is the id of the session that patched the function, the id of the marker its update writes
// (marker.go): restore removes the marker only while it is that session's. state is pending from just before the
// update until the update is accepted, then applied. superseded lists the values earlier patches of the session
// wrote to the key and that may still be live while a re-patch is pending: restore treats them as ours too.
type Journal struct {
	path string

	mu      sync.Mutex
	done    sync.Cond // signalled when a write ends
	entries []Entry
	session Session // the session that staged an entry last
	version uint64  // bumped by every change of entries
	durable uint64  // the version last written to disk
	writing bool    // a write is in flight (outside mu)
	writes  int     // writes ended (file written or removed), for tests and benchmarks
	// lastVersion and lastErr are the version the last write carried and how it ended.
	lastVersion uint64
	lastErr     error
	onWrite     func(version uint64) // test hook: called, outside mu, before each write
}

// Entry is the journal's record of one function.
type Entry struct {
	Function string   `json:"function"`
	ARN      string   `json:"arn"`
	Region   string   `json:"region,omitempty"`
	Session  string   `json:"session,omitempty"` // the id of the session that patched it (its marker's id)
	State    string   `json:"state"`             // doc.PatchPending | doc.PatchApplied
	Revision string   `json:"revision,omitempty"`
	Changes  []Change `json:"changes"`
	// FromMarker: restore what the function's session marker records, read when the function is (Changes is
	// ignored): a restore from any machine, without the journal of the session that patched it.
	FromMarker bool `json:"-"`
}

// Change is one journalled key: the document's change plus the values earlier patches wrote (see Journal).
type Change struct {
	doc.Change
	Superseded []string `json:"superseded,omitempty"`
	// Digest, in a change read from a session marker instead of After (which the marker does not carry): the
	// digest of the value the session wrote (see Digest).
	Digest string `json:"-"`
}

// ours reports whether value is one the session wrote to the key.
func (c Change) ours(value string) bool {
	if c.Digest != "" {
		return Digest(value) == c.Digest
	}
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

// EntryFromPatch turns a document's patch into an entry, for a restore from the document. region and session (the
// document's session id) may be "".
func EntryFromPatch(p doc.Patch, region, session string) Entry {
	e := Entry{Function: p.Function, ARN: p.ARN, Region: region, Session: session, State: p.State, Revision: p.Revision}
	for _, c := range p.Changes {
		e.Changes = append(e.Changes, Change{Change: c})
	}
	return e
}

type journalFile struct {
	Version string       `json:"stptunnel"`
	Session *doc.Session `json:"session,omitempty"`
	Patches []Entry      `json:"patches"`
}

// OpenJournal opens STATE_DIR/journal.json, reading what a previous session left; the directory (statedir.Ensure)
// and file are created on the first write.
func OpenJournal(dir string) (*Journal, error) {
	j := &Journal{path: filepath.Join(dir, JournalFile)}
	j.done.L = &j.mu
	b, err := os.ReadFile(j.path)
	if errors.Is(err, fs.ErrNotExist) {
		return j, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the journal: %w", err)
	}
	var f journalFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("reading the journal %s: %s (the file is JSON: repair it, or remove it once the functions are checked)", j.path, describeJSON(err))
	}
	if f.Version != doc.Version {
		return nil, fmt.Errorf("reading the journal %s: unknown version %q", j.path, f.Version)
	}
	j.entries = f.Patches
	if f.Session != nil {
		j.session = Session{ID: f.Session.ID, By: f.Session.By, At: f.Session.Started}
	}
	return j, nil
}

// Session is the session that patched last, while the journal holds entries: the session a later step of the same
// state dir continues.
func (j *Journal) Session() (Session, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.session, len(j.entries) > 0 && j.session.ID != ""
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

// Put records e, replacing the entry with the same ARN, and returns once it is on disk.
func (j *Journal) Put(e Entry) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.put(e)
	return j.commit(j.version)
}

// Stage records e like Put, without waiting for the disk: it is written with the next write, at the latest by Sync.
func (j *Journal) Stage(e Entry) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.put(e)
}

// stage records e, patched by session s, like Stage and returns what makes it durable: a commit of the journal as it
// is now, which returns at once if a write since has carried it.
func (j *Journal) stage(e Entry, s Session) func() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.session = s
	j.put(e)
	v := j.version
	return func() error {
		j.mu.Lock()
		defer j.mu.Unlock()
		return j.commit(v)
	}
}

// Remove forgets the function with this ARN and returns once that is on disk; the journal file is removed when no
// entry is left.
func (j *Journal) Remove(arn string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if !j.remove(arn) {
		return nil
	}
	return j.commit(j.version)
}

// StageRemove forgets the function with this ARN like Remove, without waiting for the disk.
func (j *Journal) StageRemove(arn string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.remove(arn)
}

// Sync returns once every change made so far is on disk.
func (j *Journal) Sync() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.commit(j.version)
}

// Writes is how many times the journal file was written (or removed) since OpenJournal.
func (j *Journal) Writes() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.writes
}

// put records e. Callers hold j.mu.
func (j *Journal) put(e Entry) {
	e = e.clone()
	if i := j.index(e.ARN); i >= 0 {
		j.entries[i] = e
	} else {
		j.entries = append(j.entries, e)
		slices.SortStableFunc(j.entries, func(a, b Entry) int { return strings.Compare(a.Function, b.Function) })
	}
	j.version++
}

// remove forgets arn's entry and reports whether there was one. Callers hold j.mu.
func (j *Journal) remove(arn string) bool {
	i := j.index(arn)
	if i < 0 {
		return false
	}
	j.entries = slices.Delete(j.entries, i, i+1)
	j.version++
	return true
}

// commit returns once version v of the entries (or a later one) is on disk: the group commit. When no write is in
// flight the caller writes every change made so far, its own and the others', outside the lock; when one is, it
// waits for it and, if that write did not include v, writes next (or lets another waiter do so). A write that
// fails fails every change it carried; a later commit tries again. Callers hold j.mu.
func (j *Journal) commit(v uint64) error {
	for j.durable < v {
		if j.writing {
			seq := j.writes
			for j.writes == seq {
				j.done.Wait()
			}
			if j.lastErr != nil && j.lastVersion >= v {
				return j.lastErr
			}
			continue
		}
		j.writing = true
		version := j.version
		b, err := j.marshal()
		if err == nil {
			j.mu.Unlock()
			err = j.writeFile(b, version)
			j.mu.Lock()
		}
		j.writing = false
		j.writes++
		j.lastVersion, j.lastErr = version, err
		if err == nil {
			j.durable = max(j.durable, version)
		}
		j.done.Broadcast()
		if err != nil {
			return err
		}
	}
	return nil
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

// marshal encodes the entries for the file; nil when there are none. Callers hold j.mu.
func (j *Journal) marshal() ([]byte, error) {
	if len(j.entries) == 0 {
		return nil, nil
	}
	f := journalFile{Version: doc.Version, Patches: j.entries}
	if j.session.ID != "" {
		f.Session = &doc.Session{ID: j.session.ID, By: j.session.By, Started: j.session.At}
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("writing the journal: %w", err)
	}
	return append(b, '\n'), nil
}

// writeFile replaces the file with b, or removes it when b is nil, so that a finished session leaves nothing
// behind. Only one runs at a time (Journal.writing).
func (j *Journal) writeFile(b []byte, version uint64) error {
	if j.onWrite != nil {
		j.onWrite(version)
	}
	if b == nil {
		if err := os.Remove(j.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("clearing the journal: %w", err)
		}
		return nil
	}
	if err := statedir.Ensure(filepath.Dir(j.path)); err != nil {
		return fmt.Errorf("writing the journal: %w", err)
	}
	if err := doc.WriteFileAtomic(j.path, b); err != nil {
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

// describeJSON says what is wrong with a JSON file in the file's own terms (a field path, the JSON kinds), not
// in the Go types it is read into.
func describeJSON(err error) string {
	var typ *json.UnmarshalTypeError
	var syn *json.SyntaxError
	switch {
	case errors.As(err, &typ):
		want := "a " + typ.Type.Kind().String()
		switch typ.Type.Kind() {
		case reflect.Slice, reflect.Array:
			want = "an array"
		case reflect.Struct, reflect.Map:
			want = "an object"
		case reflect.String:
			want = "a string"
		case reflect.Bool:
			want = "true or false"
		case reflect.Int, reflect.Int64, reflect.Uint64, reflect.Float64:
			want = "a number"
		}
		return fmt.Sprintf("%s: expected %s, got %s", typ.Field, want, typ.Value)
	case errors.As(err, &syn):
		return fmt.Sprintf("not valid JSON at byte %d", syn.Offset)
	}
	return err.Error()
}
