package lambdaenv

import (
	"github.com/stptunnel/stptunnel/pkg/doc"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// onDisk reads the journal file back as a new Journal would.
func onDisk(t *testing.T, j *Journal) []Entry {
	t.Helper()
	r, err := OpenJournal(filepath.Dir(j.Path()))
	if err != nil {
		t.Fatal(err)
	}
	return r.Entries()
}

// TestJournalGroupCommit holds the first write while 50 other functions are journalled: they all go to disk in the
// one write that follows, and each Put returns only once its entry is there.
func TestJournalGroupCommit(t *testing.T) {
	j, err := OpenJournal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	var first sync.Once
	j.onWrite = func(uint64) { first.Do(func() { <-release }) }

	var wg sync.WaitGroup
	wg.Go(func() {
		if err := j.Put(benchEntry(0, doc.PatchPending)); err != nil {
			t.Error(err)
		}
	})
	waitVersion(t, j, 1)
	const n = 50
	for i := 1; i <= n; i++ {
		wg.Go(func() {
			if err := j.Put(benchEntry(i, doc.PatchPending)); err != nil {
				t.Error(err)
			}
			if !onDiskHas(t, j, benchEntry(i, "").ARN) { // on disk when Put returns
				t.Errorf("fn-%03d: Put returned before its entry was on disk", i)
			}
		})
	}
	waitVersion(t, j, n+1)
	close(release)
	wg.Wait()
	if w := j.Writes(); w != 2 {
		t.Errorf("%d writes for 51 Puts, 50 of them made while the first was being written; want 2", w)
	}
	if got := onDisk(t, j); len(got) != n+1 {
		t.Errorf("%d entries on disk, want %d", len(got), n+1)
	}
	st, err := os.Stat(j.Path())
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("journal: %v, mode %v", err, st.Mode())
	}
}

func onDiskHas(t *testing.T, j *Journal, arn string) bool {
	for _, e := range onDisk(t, j) {
		if e.ARN == arn {
			return true
		}
	}
	return false
}

// waitVersion waits until v changes have been made to j.
func waitVersion(t *testing.T, j *Journal, v uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		j.mu.Lock()
		got := j.version
		j.mu.Unlock()
		if got >= v {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("journal at version %d, want %d", got, v)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestJournalStageAndSync: staged changes wait for Sync, which writes them all at once; removing every entry
// removes the file, in one write too.
func TestJournalStageAndSync(t *testing.T) {
	j, err := OpenJournal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const n = 300
	for i := range n {
		j.Stage(benchEntry(i, doc.PatchApplied))
	}
	if _, err := os.Stat(j.Path()); !os.IsNotExist(err) || j.Writes() != 0 {
		t.Fatalf("staging wrote: %v, %d writes", err, j.Writes())
	}
	if err := j.Sync(); err != nil {
		t.Fatal(err)
	}
	if got := onDisk(t, j); j.Writes() != 1 || len(got) != n || got[n-1].State != doc.PatchApplied {
		t.Fatalf("after Sync: %d writes, %d entries on disk", j.Writes(), len(got))
	}
	if err := j.Sync(); err != nil || j.Writes() != 1 {
		t.Fatalf("a Sync with nothing new wrote again (%d writes, %v)", j.Writes(), err)
	}
	for _, e := range j.Entries() {
		j.StageRemove(e.ARN)
	}
	if err := j.Sync(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(j.Path()); !os.IsNotExist(err) || j.Writes() != 2 {
		t.Fatalf("after removing every entry: %v, %d writes; want no file, 2 writes", err, j.Writes())
	}
}

// TestJournalWriteFailure: a Put whose write fails returns the error; the next commit tries again.
func TestJournalWriteFailure(t *testing.T) {
	dir := t.TempDir()
	j, err := OpenJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(j.Path(), 0o700); err != nil { // a directory where the file goes: the rename fails
		t.Fatal(err)
	}
	if err := j.Put(benchEntry(1, doc.PatchPending)); err == nil {
		t.Fatal("Put succeeded with the journal's path taken by a directory")
	}
	if err := os.Remove(j.Path()); err != nil {
		t.Fatal(err)
	}
	if err := j.Sync(); err != nil {
		t.Fatalf("Sync once the path is free: %v", err)
	}
	if got := onDisk(t, j); len(got) != 1 {
		t.Fatalf("%d entries on disk, want 1", len(got))
	}
}

// TestPatchJournalsBeforeEachUpdate checks CONTRACT.md §5 with group commit on: when each UpdateFunctionConfiguration
// leaves the client, the function's pending entry is already on disk. The applied marks are written together at the
// end of the patch, and the restore clears the journal in one write.
func TestPatchJournalsBeforeEachUpdate(t *testing.T) {
	const n = 40
	sim := newSim(t)
	plans := putScaleFunctions(sim, n)
	var p *Patcher
	var mu sync.Mutex
	var missing []string
	p = newPatcher(t, lambdaClient(sim, func(next http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if r.Method == http.MethodPut {
				name := functionName(strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/2015-03-31/functions/"), "/configuration"))
				found := false
				for _, e := range onDisk(t, p.Journal) {
					found = found || (e.Function == name && e.State == doc.PatchPending)
				}
				if !found {
					mu.Lock()
					missing = append(missing, name)
					mu.Unlock()
				}
			}
			return next.RoundTrip(r)
		})
	}))
	ctx := ctxT(t)
	res, err := p.Patch(ctx, plans)
	if err != nil {
		t.Fatal(err)
	}
	if applied(res) != n || len(missing) != 0 {
		t.Fatalf("%d of %d patched; updates sent without their pending entry on disk: %v", applied(res), n, missing)
	}
	patchWrites := p.Journal.Writes()
	t.Logf("patch: %d journal writes for %d functions", patchWrites, n)
	if patchWrites > n+1 {
		t.Errorf("patch: %d journal writes for %d functions; want at most one per function plus the applied marks", patchWrites, n)
	}
	for _, e := range onDisk(t, p.Journal) {
		if e.State != doc.PatchApplied {
			t.Fatalf("after the patch %s is %s on disk, want applied", e.Function, e.State)
		}
	}
	if _, err := p.Restore(ctx, p.Journal.Entries(), RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	if w := p.Journal.Writes() - patchWrites; w != 1 {
		t.Errorf("restore: %d journal writes, want 1", w)
	}
	if _, err := os.Stat(p.Journal.Path()); !os.IsNotExist(err) {
		t.Errorf("journal left after the restore: %v", err)
	}
}
