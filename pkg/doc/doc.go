// Package doc owns the JSON document that stptunnel's commands pass to one another on stdin and stdout.
//
// The document is one JSON object (CONTRACT.md §2):
//
//	{
//	  "stptunnel": "v1",
//	  "region":    "eu-west-1",
//	  "resources": [{"name", "type", "url", "address"}],
//	  "functions": [{"name", "arn", "bindings": [{"env", "resource", "via", "action"}]}],
//	  "skipped":   [{"function", "reason", "message"}],
//	  "tunnels":   [{"resource", "local", "public", "server", "engine"}],
//	  "patches":   [{"function", "arn", "state", "revision", "changes": [{"env", "existed", "before", "after"}]}],
//	  "restores":  [{"function", "state", "kept": [{"env", "reason"}]}],
//	  "session":   {"id", "by", "started"},
//	  "markers":   [{"function", "arn", "session", "by", "since", "keys", "tunnels": [{"public", "alive"}], "alive"}]
//	}
//
// Guarantees:
//   - Read takes the first complete JSON value from its reader and returns without waiting for the end of input,
//     because the producer (`tunnel open`) keeps running while it holds the tunnels.
//   - Every field a command does not own survives unchanged: the document is kept as raw JSON and a command only
//     replaces the fields it sets (sjson), so a user's own fields or a later version's fields pass through.
//   - Bad input (not JSON, not an object, a known field of the wrong type, an unknown version) is reported as an
//     *InputError that names what is wrong and where; nothing is returned to act on.
//
// The document may carry connection strings with passwords: it is data, not a log. WriteFile writes mode 0600.
//
// API: meant for other programs that read or produce stptunnel's documents, and kept compatible within a major
// version, as the document itself is.
package doc

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/tidwall/gjson"
	"github.com/tidwall/pretty"
	"github.com/tidwall/sjson"
)

// Version is the value of the "stptunnel" field this version writes and reads.
const Version = "v1"

// Field names of the document, as CONTRACT.md §2 spells them.
const (
	FieldVersion   = "stptunnel"
	FieldRegion    = "region"
	FieldResources = "resources"
	FieldFunctions = "functions"
	FieldSkipped   = "skipped"
	FieldTunnels   = "tunnels"
	FieldPatches   = "patches"
	FieldRestores  = "restores"
	FieldSession   = "session"
	FieldMarkers   = "markers"
)

// Document is the JSON document. The zero value is not usable; use New, Read or Parse.
type Document struct {
	raw []byte
}

// InputError reports a document that cannot be used: the caller treats it as bad input (exit 2).
type InputError struct {
	Where string // "stdin", a file name, or a field path such as "resources[1].url"
	Err   error
}

func (e *InputError) Error() string { return fmt.Sprintf("bad document (%s): %v", e.Where, e.Err) }
func (e *InputError) Unwrap() error { return e.Err }

// New returns an empty document that carries only the version field.
func New() *Document {
	return &Document{raw: []byte(`{"stptunnel":"v1"}`)}
}

// MaxSize is the largest document Read accepts: far above any real session (a few KB per function), and a bound
// on the memory a malformed or hostile input can take.
const MaxSize = 64 << 20

// Read reads the first JSON value from r. Empty input (or only white space) yields New(). It does not read past
// the end of the first value more than its buffer requires, and never waits for the end of input.
func Read(r io.Reader, where string) (*Document, error) {
	d, err := NewReader(r, where).Next()
	if errors.Is(err, io.EOF) {
		return New(), nil
	}
	return d, err
}

// Reader reads the documents of a stream one after another (`cat a.json b.json | stptunnel env restore`).
type Reader struct {
	where string
	src   *limitedReader
	br    *bufio.Reader
	dec   *json.Decoder
}

// limitedReader counts what it read and stops at MaxSize, so a document over the limit is reported as such.
type limitedReader struct {
	r    io.Reader
	n    int64
	over bool
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n >= MaxSize {
		l.over = true
		return 0, io.EOF
	}
	if rest := MaxSize - l.n; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := l.r.Read(p)
	l.n += int64(n)
	return n, err
}

// NewReader reads documents from r; where names it in errors ("stdin").
func NewReader(r io.Reader, where string) *Reader {
	src := &limitedReader{r: r}
	br := bufio.NewReader(src)
	return &Reader{where: where, src: src, br: br, dec: json.NewDecoder(br)}
}

// Next returns the next document, or io.EOF when only white space is left. It returns as soon as the document's
// value is complete, without waiting for the end of input. A document over MaxSize is bad input.
func (r *Reader) Next() (*Document, error) {
	if !r.dec.More() {
		if r.src.over {
			return nil, r.tooLarge()
		}
		return nil, io.EOF
	}
	start := r.dec.InputOffset()
	var raw json.RawMessage
	if err := r.dec.Decode(&raw); err != nil {
		var syn *json.SyntaxError
		switch {
		case r.src.over:
			return nil, r.tooLarge()
		case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
			return nil, &InputError{Where: r.where, Err: errors.New("truncated JSON: the input ended before the document did")}
		case errors.As(err, &syn):
			return nil, &InputError{Where: r.where, Err: fmt.Errorf("not valid JSON at byte %d: %v", start+syn.Offset, err)}
		}
		return nil, &InputError{Where: r.where, Err: err}
	}
	return Parse(raw, r.where)
}

func (r *Reader) tooLarge() error {
	return &InputError{Where: r.where, Err: fmt.Errorf("the input is over %d MiB: not a stptunnel document", MaxSize>>20)}
}

// CheckEnd refuses content after the document that is already there: a second document (only env restore takes
// several) or trailing garbage. It never waits for more input: a producer that keeps its end of a pipe open
// (`tunnel open | env patch`) is fine.
func (r *Reader) CheckEnd() error {
	rest, _ := io.ReadAll(io.LimitReader(r.dec.Buffered(), 64))
	if more, _ := r.br.Peek(min(r.br.Buffered(), 64)); len(more) > 0 { // read from the input, not yet decoded
		rest = append(rest, more...)
	}
	if trimmed := strings.TrimSpace(string(rest)); trimmed != "" {
		what := "content"
		if trimmed[0] == '{' {
			what = "a second document (only `stptunnel env restore` takes several)"
		}
		return &InputError{Where: r.where, Err: fmt.Errorf("%s after the document", what)}
	}
	return nil
}

// ReadFile reads a document from a file.
func ReadFile(path string) (*Document, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Read(f, path)
}

// Parse validates b as a document. It checks the version and the type of every field this package knows.
func Parse(b []byte, where string) (*Document, error) {
	if !gjson.ValidBytes(b) {
		return nil, &InputError{Where: where, Err: errors.New("not valid JSON")}
	}
	root := gjson.ParseBytes(b)
	if !root.IsObject() {
		return nil, &InputError{Where: where, Err: fmt.Errorf("expected a JSON object, got %s", kind(root))}
	}
	d := &Document{raw: append([]byte(nil), b...)}
	v := root.Get(FieldVersion)
	switch {
	case !v.Exists():
		var err error
		if d.raw, err = sjson.SetBytes(d.raw, FieldVersion, Version); err != nil {
			return nil, err
		}
	case v.Type != gjson.String:
		return nil, &InputError{Where: where + ": stptunnel", Err: fmt.Errorf("expected a string such as %q, got %s", Version, kind(v))}
	case v.Str != Version:
		return nil, &InputError{Where: where + ": stptunnel", Err: fmt.Errorf("unknown document version %q (this stptunnel reads %q)", v.Str, Version)}
	}
	if err := d.validate(where); err != nil {
		return nil, err
	}
	return d, nil
}

// validate decodes every known field strictly, so that commands never act on a half-understood document.
func (d *Document) validate(where string) error {
	if r := gjson.GetBytes(d.raw, FieldRegion); r.Exists() && r.Type != gjson.String && r.Type != gjson.Null {
		return &InputError{Where: where + ": region", Err: fmt.Errorf("expected a string, got %s", kind(r))}
	}
	checks := []struct {
		field string
		into  any
	}{
		{FieldResources, &[]Resource{}},
		{FieldFunctions, &[]Function{}},
		{FieldSkipped, &[]Skip{}},
		{FieldTunnels, &[]Tunnel{}},
		{FieldPatches, &[]Patch{}},
		{FieldRestores, &[]Restore{}},
		{FieldMarkers, &[]Marked{}},
	}
	if err := d.decodeObject(FieldSession, &Session{}); err != nil {
		var ie *InputError
		if errors.As(err, &ie) {
			ie.Where = where + ": " + ie.Where
		}
		return err
	}
	for _, c := range checks {
		if err := d.decode(c.field, c.into); err != nil {
			var ie *InputError
			if errors.As(err, &ie) {
				ie.Where = where + ": " + ie.Where
			}
			return err
		}
	}
	return nil
}

// decode unmarshals one top-level array field into into. A missing or null field leaves into untouched.
func (d *Document) decode(field string, into any) error {
	r := gjson.GetBytes(d.raw, field)
	if !r.Exists() || r.Type == gjson.Null {
		return nil
	}
	if !r.IsArray() {
		return &InputError{Where: field, Err: fmt.Errorf("expected an array, got %s", kind(r))}
	}
	var err error
	r.ForEach(func(key, item gjson.Result) bool {
		if !item.IsObject() {
			err = &InputError{Where: fmt.Sprintf("%s[%d]", field, key.Int()), Err: fmt.Errorf("expected an object, got %s", kind(item))}
			return false
		}
		return true
	})
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(r.Raw)))
	if err := dec.Decode(into); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return &InputError{Where: field + "[]." + te.Field, Err: fmt.Errorf("expected %s, got %s", te.Type, te.Value)}
		}
		return &InputError{Where: field, Err: err}
	}
	return nil
}

// decodeObject unmarshals one top-level object field into into. A missing or null field leaves into untouched.
func (d *Document) decodeObject(field string, into any) error {
	r := gjson.GetBytes(d.raw, field)
	if !r.Exists() || r.Type == gjson.Null {
		return nil
	}
	if !r.IsObject() {
		return &InputError{Where: field, Err: fmt.Errorf("expected an object, got %s", kind(r))}
	}
	if err := json.Unmarshal([]byte(r.Raw), into); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return &InputError{Where: field + "." + te.Field, Err: fmt.Errorf("expected %s, got %s", te.Type, te.Value)}
		}
		return &InputError{Where: field, Err: err}
	}
	return nil
}

func kind(r gjson.Result) string {
	switch {
	case r.IsObject():
		return "an object"
	case r.IsArray():
		return "an array"
	}
	switch r.Type {
	case gjson.String:
		return "a string"
	case gjson.Number:
		return "a number"
	case gjson.True, gjson.False:
		return "a boolean"
	case gjson.Null:
		return "null"
	}
	return "nothing"
}

// Bytes returns the document as compact-or-as-read JSON.
func (d *Document) Bytes() []byte { return d.raw }

// Write writes the document, indented for people, followed by a newline.
func (d *Document) Write(w io.Writer) error {
	_, err := w.Write(pretty.PrettyOptions(d.raw, &pretty.Options{Width: 120, Indent: "  "}))
	return err
}

// WriteFile writes the document to path atomically with mode 0600: it may hold passwords.
func (d *Document) WriteFile(path string) error {
	var buf bytes.Buffer
	if err := d.Write(&buf); err != nil {
		return err
	}
	return WriteFileAtomic(path, buf.Bytes())
}

// WriteFileAtomic writes data to path so that a crash at any instant leaves either the old or the new content:
// a temporary file in the same directory (named AtomicTempPrefix(name) and a random suffix), fsync, rename, then
// fsync of the directory. The file is mode 0600. The directory must exist: it is never created here, so that the
// state dir is only ever created by statedir.Ensure, which keeps it out of version control.
func WriteFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, AtomicTempPrefix(filepath.Base(path))+"*")
	if err != nil {
		return err
	}
	name := tmp.Name()
	defer os.Remove(name) // no-op after a successful rename
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(name, path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // best effort: not every platform can fsync a directory
		d.Close()
	}
	return nil
}

// AtomicTempPrefix is how the temporary file of WriteFileAtomic(DIR/name) is named before its random suffix, so a
// caller can recognise one a crash left behind.
func AtomicTempPrefix(name string) string { return "." + name + ".tmp-" }

// Region returns the "region" field, or "".
func (d *Document) Region() string { return gjson.GetBytes(d.raw, FieldRegion).String() }

// Get returns the raw JSON of a field (gjson path), for fields this package has no typed view of.
func (d *Document) Get(path string) gjson.Result { return gjson.GetBytes(d.raw, path) }

// Set replaces the field at path (an sjson path) with v marshalled as JSON. Every other field is kept.
func (d *Document) Set(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("setting %s: %w", path, err)
	}
	out, err := sjson.SetRawBytes(d.raw, path, b)
	if err != nil {
		return fmt.Errorf("setting %s: %w", path, err)
	}
	d.raw = out
	return nil
}

// Append adds v to the end of the array field, creating it if needed; existing items are kept byte for byte.
func (d *Document) Append(field string, v any) error { return d.Set(field+".-1", v) }

// Resources returns the typed view of "resources".
func (d *Document) Resources() ([]Resource, error) {
	var out []Resource
	return out, d.decode(FieldResources, &out)
}

// Functions returns the typed view of "functions".
func (d *Document) Functions() ([]Function, error) {
	var out []Function
	return out, d.decode(FieldFunctions, &out)
}

// Skipped returns the typed view of "skipped".
func (d *Document) Skipped() ([]Skip, error) {
	var out []Skip
	return out, d.decode(FieldSkipped, &out)
}

// Tunnels returns the typed view of "tunnels".
func (d *Document) Tunnels() ([]Tunnel, error) {
	var out []Tunnel
	return out, d.decode(FieldTunnels, &out)
}

// Patches returns the typed view of "patches".
func (d *Document) Patches() ([]Patch, error) {
	var out []Patch
	return out, d.decode(FieldPatches, &out)
}

// Restores returns the typed view of "restores".
func (d *Document) Restores() ([]Restore, error) {
	var out []Restore
	return out, d.decode(FieldRestores, &out)
}

// Session returns the typed view of "session"; ok is false when the document has none.
func (d *Document) Session() (s Session, ok bool, err error) {
	if r := gjson.GetBytes(d.raw, FieldSession); !r.Exists() || r.Type == gjson.Null {
		return Session{}, false, nil
	}
	err = d.decodeObject(FieldSession, &s)
	return s, err == nil, err
}

// Markers returns the typed view of "markers".
func (d *Document) Markers() ([]Marked, error) {
	var out []Marked
	return out, d.decode(FieldMarkers, &out)
}
