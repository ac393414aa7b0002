package lambdaenv

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/stptunnel/stptunnel/pkg/doc"
)

// MarkerKey is the variable every patch writes, in the same update as the keys it changes, to record the session
// on the function itself (CONTRACT.md §5): who holds the function, and what each changed key held before, so that a
// second developer's session sees it is in use and any machine can restore it.
const MarkerKey = "STPTUNNEL_SESSION"

// MarkerVersion is the "v" this version writes and reads.
const MarkerVersion = 1

// Marker is the value of STPTUNNEL_SESSION, compact JSON:
//
//	{"v":1,"id":"3f9c2a71d04e","by":"ana@laptop","at":"2026-03-01T10:00:00Z","pub":["bore.pub:54321"],
//	 "keys":{"STP_POSTGRES_DB_CONNECTION_STRING":{"b":"postgres://admin:…@db…:5432/app","h":"q0Jx3…"}}}
//
// b is the key's value before the session (null when the session added the key) and h the digest of the value
// the session wrote (Digest). It holds deployed values, passwords among them: it has the audience of the variables
// themselves and is never printed.
type Marker struct {
	V    int                  `json:"v"`
	ID   string               `json:"id"`
	By   string               `json:"by"`
	At   string               `json:"at"`
	Pub  []string             `json:"pub"`
	Keys map[string]MarkedKey `json:"keys"`
}

// MarkedKey is one key of a marker.
type MarkedKey struct {
	B *string `json:"b"` // the value before the session; nil when the session added the key
	H string  `json:"h"` // Digest of the value the session wrote
}

// Session is who patches: the marker's id, by and at.
type Session struct {
	ID string // a fresh random id per session
	By string // user@host
	At string // when the session started, RFC 3339
}

// Digest is the marker's h of a value: the first 16 characters of base64url(sha256(value)), 96 bits, enough to
// tell the value a session wrote from any other without carrying it.
func Digest(value string) string {
	sum := sha256.Sum256([]byte(value))
	return base64.RawURLEncoding.EncodeToString(sum[:])[:16]
}

// Encode is the marker's compact JSON (no HTML escaping, keys sorted): the value of STPTUNNEL_SESSION.
func (m Marker) Encode() string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if m.Pub == nil {
		m.Pub = []string{}
	}
	if m.Keys == nil {
		m.Keys = map[string]MarkedKey{}
	}
	_ = enc.Encode(m) // strings, ints and maps of them always encode
	return strings.TrimSuffix(buf.String(), "\n")
}

// ErrMarker is wrapped by the errors about a STPTUNNEL_SESSION value that is not a marker this version reads. Its
// messages never quote the value, which holds deployed values.
var ErrMarker = errors.New("not a session marker this version of stptunnel reads")

// ParseMarker reads a STPTUNNEL_SESSION value.
func ParseMarker(value string) (Marker, error) {
	var m Marker
	if err := json.Unmarshal([]byte(value), &m); err != nil {
		return Marker{}, fmt.Errorf("%w (not JSON)", ErrMarker)
	}
	switch {
	case m.V != MarkerVersion:
		return Marker{}, fmt.Errorf("%w (version %d; this one reads %d: a newer stptunnel wrote it)", ErrMarker, m.V, MarkerVersion)
	case m.ID == "":
		return Marker{}, fmt.Errorf("%w (no session id)", ErrMarker)
	}
	for k, mk := range m.Keys {
		if mk.H == "" {
			return Marker{}, fmt.Errorf("%w (key %s has no digest)", ErrMarker, k)
		}
	}
	return m, nil
}

// MarkerOf returns the marker a function's variables carry: ok is false when they carry none, err says why one
// cannot be read.
func MarkerOf(env map[string]string) (m Marker, ok bool, err error) {
	v, has := env[MarkerKey]
	if !has {
		return Marker{}, false, nil
	}
	m, err = ParseMarker(v)
	return m, true, err
}

// KeyNames are the marker's keys, sorted: what a message may say of it.
func (m Marker) KeyNames() []string { return slices.Sorted(maps.Keys(m.Keys)) }

// Before is the marker's record of key: the value before the session and whether the key existed.
func (mk MarkedKey) Before() (value string, existed bool) {
	if mk.B == nil {
		return "", false
	}
	return *mk.B, true
}

// live reports whether any marked key of env still holds the value the marker's session wrote. A marker that is not
// live records nothing left to restore (every key was changed since, or put back): it is stale, holds nothing, and
// the next write to the function drops it.
func (m Marker) live(env map[string]string) bool {
	for k, mk := range m.Keys {
		if v, ok := env[k]; ok && mk.holds(v) {
			return true
		}
	}
	return false
}

// holds reports whether value is the one the marker's session wrote to the key.
func (mk MarkedKey) holds(value string) bool { return Digest(value) == mk.H }

// changes are the marker's keys as journal changes: what a restore from the marker puts back, a key at a time
// while it still holds the value the session wrote (recognised by its digest).
func (m Marker) changes() []Change {
	var out []Change
	for _, k := range m.KeyNames() {
		mk := m.Keys[k]
		before, existed := mk.Before()
		out = append(out, Change{Change: doc.Change{Env: k, Existed: existed, Before: before}, Digest: mk.H})
	}
	return out
}

// newMarker is the marker of a write: the session, the tunnels the function now uses and, per changed key, its
// value before the session and the digest of the value written.
func newMarker(s Session, pub []string, changes []doc.Change) Marker {
	m := Marker{V: MarkerVersion, ID: s.ID, By: s.By, At: s.At, Pub: pub, Keys: map[string]MarkedKey{}}
	for _, c := range changes {
		mk := MarkedKey{H: Digest(c.After)}
		if c.Existed {
			b := c.Before
			mk.B = &b
		}
		m.Keys[c.Env] = mk
	}
	return m
}

// Deployed returns env as it was before any session: without the marker, and with every marked key that still
// holds the value its session wrote put back to its value before the session (removed, when the session added
// it). A function carrying no readable marker is returned as it is, minus the marker. detect binds variables on
// this view, so a function another session holds is recognised by what it was deployed with.
func Deployed(env map[string]string) map[string]string {
	out := maps.Clone(env)
	m, ok, err := MarkerOf(env)
	if !ok {
		return out
	}
	delete(out, MarkerKey)
	if err == nil {
		revertMarked(out, env, m.Keys)
	}
	return out
}

// revertMarked puts back into base every key of keys whose value in current is still the one the session wrote.
func revertMarked(base, current map[string]string, keys map[string]MarkedKey) {
	for k, mk := range keys {
		v, has := current[k]
		if !has || !mk.holds(v) {
			continue
		}
		if before, existed := mk.Before(); existed {
			base[k] = before
		} else {
			delete(base, k)
		}
	}
}
