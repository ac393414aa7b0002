package statedir

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func readIgnore(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, IgnoreFile))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestEnsureCreatesAPrivateDirThatIgnoresItself(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "app", "state") // parents are created too
	if err := Ensure(dir); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && st.Mode().Perm() != 0o700 {
		t.Errorf("state dir mode = %v, want 0700", st.Mode().Perm())
	}
	if got := readIgnore(t, dir); got != IgnoreContent {
		t.Errorf("%s = %q, want %q", IgnoreFile, got, IgnoreContent)
	}
	lines := strings.Split(strings.TrimSpace(IgnoreContent), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "# ") || lines[1] != "*" {
		t.Errorf("%s must be one comment line then *, got %q", IgnoreFile, IgnoreContent)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("state dir holds %v, want only %s (no temporary file left)", entries, IgnoreFile)
	}
	// Twice is harmless.
	if err := Ensure(dir); err != nil {
		t.Fatal(err)
	}
}

func TestEnsureLeavesAnExistingIgnoreFileAlone(t *testing.T) {
	dir := filepath.Join(t.TempDir(), DefaultName)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	mine := "# mine\njournal.json\n"
	if err := os.WriteFile(filepath.Join(dir, IgnoreFile), []byte(mine), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Ensure(dir); err != nil {
		t.Fatal(err)
	}
	if got := readIgnore(t, dir); got != mine {
		t.Errorf("%s was changed to %q", IgnoreFile, got)
	}
	st, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && st.Mode().Perm() != 0o755 {
		t.Errorf("an existing dir's mode was changed to %v", st.Mode().Perm())
	}
}

// An existing directory gets the file when it is plainly ours (the default name, or empty), never when it holds
// other things: --state-dir . must not hide a whole project from git.
func TestEnsureOnExistingDirectories(t *testing.T) {
	for _, tc := range []struct {
		name  string
		dir   string
		files []string
		want  bool
	}{
		{"default name from an older version", DefaultName, []string{"lock", "journal.json"}, true},
		{"empty", "state", nil, true},
		{"left by a crash while writing the file", "state", []string{"..gitignore.tmp-123"}, true},
		{"a project directory", "project", []string{"go.mod", "main.go"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), tc.dir)
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			for _, f := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if err := Ensure(dir); err != nil {
				t.Fatal(err)
			}
			_, err := os.Stat(filepath.Join(dir, IgnoreFile))
			if got := err == nil; got != tc.want {
				t.Fatalf("%s written = %v, want %v (stat: %v)", IgnoreFile, got, tc.want, err)
			}
		})
	}
}

func TestEnsureRefusesAFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), DefaultName)
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	err := Ensure(path)
	if err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("Ensure on a file: %v, want a 'not a directory' error", err)
	}
}

// git itself agrees: in a repository, nothing in the state dir is listed, and the repository's own .gitignore is
// neither created nor changed.
func TestGitIgnoresTheStateDir(t *testing.T) {
	git, err := exec.LookPath("git")
	if err != nil {
		t.Skip("git is not installed")
	}
	repo := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(git, args...)
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	run("init", "-q")
	dir := filepath.Join(repo, DefaultName)
	if err := Ensure(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "journal.json"), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := run("status", "--porcelain", "--untracked-files=all"); out != "" {
		t.Fatalf("git status lists:\n%s", out)
	}
	if out := run("status", "--porcelain", "--ignored"); out != "!! "+DefaultName+"/\n" {
		t.Fatalf("git status --ignored = %q, want the state dir ignored", out)
	}
	if _, err := os.Stat(filepath.Join(repo, IgnoreFile)); !os.IsNotExist(err) {
		t.Fatalf("the repository's own %s was touched: %v", IgnoreFile, err)
	}
}
