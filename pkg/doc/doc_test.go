package doc

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"
)

func TestReadEmptyGivesNewDocument(t *testing.T) {
	for _, in := range []string{"", "  \n\t "} {
		d, err := Read(strings.NewReader(in), "stdin")
		if err != nil {
			t.Fatalf("Read(%q): %v", in, err)
		}
		if got := d.Get(FieldVersion).String(); got != Version {
			t.Fatalf("version = %q, want %q", got, Version)
		}
	}
}

func TestReadRejectsBadInput(t *testing.T) {
	cases := []struct {
		in, where, msg string
	}{
		{`{"a":`, "stdin", "truncated"},
		{`not json`, "stdin", "not valid JSON"},
		{`[1,2]`, "stdin", "expected a JSON object, got an array"},
		{`"x"`, "stdin", "expected a JSON object, got a string"},
		{`{"stptunnel":"v9"}`, "stdin: stptunnel", `unknown document version "v9"`},
		{`{"stptunnel":1}`, "stdin: stptunnel", "expected a string"},
		{`{"region":5}`, "stdin: region", "expected a string, got a number"},
		{`{"resources":{}}`, "stdin: resources", "expected an array, got an object"},
		{`{"resources":[1]}`, "stdin: resources[0]", "expected an object, got a number"},
		{`{"resources":[{"name":"a"},{"name":7}]}`, "stdin: resources[].name", "expected string, got number"},
		{`{"functions":[{"name":"f","bindings":"x"}]}`, "stdin: functions[].bindings", "expected []doc.Binding"},
		{`{"patches":[{"function":"f","changes":[{"existed":"yes"}]}]}`, "stdin: patches[].changes.existed", "expected bool"},
	}
	for _, c := range cases {
		_, err := Read(strings.NewReader(c.in), "stdin")
		var ie *InputError
		if !errors.As(err, &ie) {
			t.Errorf("Read(%q) = %v, want an *InputError", c.in, err)
			continue
		}
		if ie.Where != c.where || !strings.Contains(ie.Err.Error(), c.msg) {
			t.Errorf("Read(%q) = where %q err %q; want where %q containing %q", c.in, ie.Where, ie.Err, c.where, c.msg)
		}
	}
}

func TestReadDoesNotWaitForEndOfInput(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	go func() { _, _ = pw.Write([]byte(`{"stptunnel":"v1","region":"eu-west-1"}` + "\n")) }()
	done := make(chan *Document, 1)
	go func() {
		d, err := Read(pr, "stdin")
		if err != nil {
			t.Error(err)
		}
		done <- d
	}()
	select {
	case d := <-done:
		if d.Region() != "eu-west-1" {
			t.Fatalf("region = %q", d.Region())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Read waited for the end of input after a complete value")
	}
}

func TestUnknownFieldsSurviveEnrichment(t *testing.T) {
	in := `{"stptunnel":"v1","mine":{"deep":[1,2,{"x":"y"}]},"resources":[{"name":"db","type":"postgres","note":"keep me"}]}`
	d, err := Read(strings.NewReader(in), "stdin")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Append(FieldResources, Resource{Name: "cache", Type: "redis", Address: "localhost:6379"}); err != nil {
		t.Fatal(err)
	}
	if err := d.Set(FieldTunnels, []Tunnel{{Resource: "db", Public: "bore.pub:1"}}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := d.Write(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.Bytes()
	if got := gjson.GetBytes(out, "mine").Raw; !jsonEqual(got, `{"deep":[1,2,{"x":"y"}]}`) {
		t.Errorf("unknown field changed: %s", got)
	}
	if got := gjson.GetBytes(out, "resources.0.note").String(); got != "keep me" {
		t.Errorf("unknown field inside an item lost: %s", out)
	}
	rs, err := d.Resources()
	if err != nil || len(rs) != 2 || rs[1].Name != "cache" {
		t.Fatalf("resources = %+v, %v", rs, err)
	}
	ts, _ := d.Tunnels()
	if len(ts) != 1 || ts[0].Public != "bore.pub:1" {
		t.Fatalf("tunnels = %+v", ts)
	}
}

func jsonEqual(a, b string) bool {
	var ca, cb bytes.Buffer
	if json.Compact(&ca, []byte(a)) != nil || json.Compact(&cb, []byte(b)) != nil {
		return false
	}
	return ca.String() == cb.String()
}

func TestWriteFileAtomicIsPrivate(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "journal.json")
	if err := WriteFileAtomic(p, []byte("one")); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(p, []byte("two")); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode = %v, want 0600", st.Mode().Perm())
	}
	b, _ := os.ReadFile(p)
	if string(b) != "two" {
		t.Fatalf("content = %q", b)
	}
	entries, _ := os.ReadDir(filepath.Dir(p))
	if len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
}

// The state dir is created only by statedir.Ensure (it keeps itself out of git): a write never creates a directory.
func TestWriteFileAtomicNeverCreatesTheDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "absent")
	if err := WriteFileAtomic(filepath.Join(dir, "journal.json"), []byte("one")); err == nil {
		t.Fatal("writing into a missing directory succeeded")
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("the directory was created: %v", err)
	}
}

func FuzzRead(f *testing.F) {
	f.Add(`{"stptunnel":"v1","resources":[{"name":"a"}]}`)
	f.Add(`{"functions":[{"bindings":[{"env":1}]}]}`)
	f.Add(`{`)
	f.Fuzz(func(t *testing.T, in string) {
		d, err := Read(strings.NewReader(in), "stdin")
		if err != nil {
			var ie *InputError
			if !errors.As(err, &ie) {
				t.Fatalf("error is not an InputError: %v", err)
			}
			return
		}
		// A document that was accepted must give typed views without error and survive a write/read cycle.
		for _, f := range []func() error{
			func() error { _, e := d.Resources(); return e },
			func() error { _, e := d.Functions(); return e },
			func() error { _, e := d.Patches(); return e },
		} {
			if err := f(); err != nil {
				t.Fatalf("accepted document fails a typed view: %v", err)
			}
		}
		var buf bytes.Buffer
		if err := d.Write(&buf); err != nil {
			t.Fatal(err)
		}
		if _, err := Read(&buf, "again"); err != nil {
			t.Fatalf("written document does not read back: %v\n%s", err, buf.String())
		}
	})
}

func TestReaderSeveralDocumentsAndTheirEnd(t *testing.T) {
	r := NewReader(strings.NewReader(`{"stptunnel":"v1","a":1}
{"stptunnel":"v1","a":2}  `), "stdin")
	var got []string
	for {
		d, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(d.Bytes()))
	}
	if len(got) != 2 || !strings.Contains(got[1], `"a":2`) {
		t.Fatalf("documents = %q", got)
	}

	one := NewReader(strings.NewReader(`{"stptunnel":"v1"}`+"\n\t "), "stdin")
	if _, err := one.Next(); err != nil {
		t.Fatal(err)
	}
	if err := one.CheckEnd(); err != nil {
		t.Fatalf("white space after the document: %v", err)
	}
	two := NewReader(strings.NewReader(`{"stptunnel":"v1"} {"stptunnel":"v1"}`), "stdin")
	two.Next()
	var in *InputError
	if err := two.CheckEnd(); !errors.As(err, &in) || !strings.Contains(err.Error(), "second document") {
		t.Fatalf("CheckEnd = %v, want a second document refused", err)
	}
	junk := NewReader(strings.NewReader(`{"stptunnel":"v1"} trailing`), "stdin")
	junk.Next()
	if err := junk.CheckEnd(); !errors.As(err, &in) {
		t.Fatalf("CheckEnd = %v, want trailing content refused", err)
	}
}

func TestReaderDoesNotWaitForTheEndOfInput(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	go pw.Write([]byte(`{"stptunnel":"v1","tunnels":[]}`)) // and the writer keeps the pipe open
	r := NewReader(pr, "stdin")
	done := make(chan error, 1)
	go func() {
		_, err := r.Next()
		if err == nil {
			err = r.CheckEnd()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Next or CheckEnd waited for the end of input")
	}
}

func TestReaderRefusesAnOversizedInput(t *testing.T) {
	big := io.MultiReader(strings.NewReader(`{"stptunnel":"v1","x":"`), io.LimitReader(zeros{}, MaxSize+10))
	_, err := Read(big, "stdin")
	var in *InputError
	if !errors.As(err, &in) || !strings.Contains(err.Error(), "over 64 MiB") {
		t.Fatalf("Read = %v, want the size refused", err)
	}
}

// zeros reads as an endless run of '0'.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = '0'
	}
	return len(p), nil
}
