package bore

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
	"unicode/utf8"
)

// Protocol constants of bore 0.5 (src/shared.rs, src/server.rs).
const (
	DefaultControlPort = 7835
	// MaxFrameLength is the longest JSON text a frame may hold, NUL delimiter excluded.
	MaxFrameLength = 256
	// DefaultHandshakeTimeout bounds the wait for each initial message of a connection.
	DefaultHandshakeTimeout = 3 * time.Second
	// HeartbeatInterval is how often a server sends Heartbeat on an idle control connection.
	HeartbeatInterval = 500 * time.Millisecond
	// PendingExpiry is how long a server keeps a visitor's connection waiting for the client's Accept.
	PendingExpiry = 10 * time.Second
	// RandomPortAttempts is how many random ports a server tries for a Hello(0).
	RandomPortAttempts = 150
)

// Error texts a bore server sends in Error frames; bore clients print them.
const (
	errTextPortInUse        = "port already in use"
	errTextPermission       = "permission denied"
	errTextBindFailed       = "failed to bind to port"
	errTextPortNotInRange   = "client port number not in allowed range"
	errTextNoPortAvailable  = "failed to find an available port"
	errTextInvalidSecret    = "invalid secret"
	errTextSecretRequired   = "server requires secret, but no secret was provided"
	errTextTooManyTunnels   = "too many tunnels from this address"
	errTextMissingSecretCli = "server requires authentication, but no client secret was provided"
)

// Message kinds: the variant names of bore's ClientMessage and ServerMessage enums.
const (
	kindAuthenticate = "Authenticate" // client, hex tag
	kindHello        = "Hello"        // both, port
	kindAccept       = "Accept"       // client, uuid
	kindChallenge    = "Challenge"    // server, uuid
	kindHeartbeat    = "Heartbeat"    // server, no value
	kindConnection   = "Connection"   // server, uuid
	kindError        = "Error"        // server, text
)

// message is one decoded frame. Only the field that belongs to kind is meaningful.
type message struct {
	kind string
	port uint16 // Hello
	id   uuid   // Accept, Challenge, Connection
	text string // Authenticate (tag), Error
}

func (m message) String() string {
	switch m.kind {
	case kindHello:
		return m.kind + "(" + strconv.Itoa(int(m.port)) + ")"
	case kindAccept, kindChallenge, kindConnection:
		return m.kind + "(" + m.id.String() + ")"
	case kindHeartbeat:
		return m.kind
	default:
		return m.kind + "(" + strconv.Quote(m.text) + ")"
	}
}

// marshal returns the JSON text of m, as serde_json writes it.
func (m message) marshal() ([]byte, error) {
	return m.appendJSON(make([]byte, 0, 64))
}

// appendJSON appends the JSON text of m to dst. The messages of every connection (Heartbeat, Hello, Accept,
// Connection, Challenge, Authenticate: no character to escape) are written directly; Error texts go through
// encoding/json for their escapes.
func (m message) appendJSON(dst []byte) ([]byte, error) {
	var value any
	switch m.kind {
	case kindHeartbeat:
		return append(dst, `"Heartbeat"`...), nil
	case kindHello:
		dst = append(dst, `{"Hello":`...)
		return append(strconv.AppendUint(dst, uint64(m.port), 10), '}'), nil
	case kindAccept, kindChallenge, kindConnection:
		dst = append(append(append(dst, `{"`...), m.kind...), `":"`...)
		return append(m.id.appendText(dst), `"}`...), nil
	case kindAuthenticate:
		if isHex(m.text) {
			dst = append(append(append(dst, `{"`...), m.kind...), `":"`...)
			return append(append(dst, m.text...), `"}`...), nil
		}
		value = m.text
	case kindError:
		value = m.text
	default:
		return nil, fmt.Errorf("%w: unknown message kind %q", ErrProtocol, m.kind)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // serde_json does not escape <, > and &
	if err := enc.Encode(map[string]any{m.kind: value}); err != nil {
		return dst, err
	}
	return append(dst, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...), nil
}

func isHex(s string) bool {
	for i := range len(s) {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') && (c < 'A' || c > 'F') {
			return false
		}
	}
	return true
}

// unmarshalCommon decodes the frames every connection carries in the exact form serde_json writes them:
// "Heartbeat", {"Hello":N}, {"Accept"|"Connection"|"Challenge":"<hyphenated uuid>"} and {"Authenticate":"<hex>"}. Any other text, or one of
// these in another form (spaces, escapes, leading zeros), is left to the full decoder (ok false); what this
// accepts, the full decoder accepts with the same result.
func unmarshalCommon(data []byte, kinds map[string]bool) (m message, ok bool) {
	if string(data) == `"Heartbeat"` {
		return message{kind: kindHeartbeat}, kinds[kindHeartbeat]
	}
	if len(data) < 6 || data[0] != '{' || data[1] != '"' || data[len(data)-1] != '}' {
		return m, false
	}
	kind, value, found := bytes.Cut(data[2:len(data)-1], []byte(`":`))
	if !found {
		return m, false
	}
	switch string(kind) {
	case kindHello:
		if len(value) == 0 || len(value) > 5 || value[0] == '0' && len(value) > 1 {
			return m, false
		}
		n := 0
		for _, c := range value {
			if c < '0' || c > '9' {
				return m, false
			}
			n = n*10 + int(c-'0')
		}
		if n > 65535 {
			return m, false
		}
		m = message{kind: kindHello, port: uint16(n)}
	case kindAccept, kindConnection, kindChallenge:
		if len(value) != 38 || value[0] != '"' || value[37] != '"' {
			return m, false
		}
		id, err := parseUUID(string(value[1:37]))
		if err != nil || bytes.IndexByte(value[1:37], '\\') >= 0 {
			return m, false
		}
		m = message{kind: string(kind), id: id}
	case kindAuthenticate:
		if len(value) < 2 || value[0] != '"' || value[len(value)-1] != '"' || !isHex(string(value[1:len(value)-1])) {
			return m, false
		}
		m = message{kind: kindAuthenticate, text: string(value[1 : len(value)-1])}
	default:
		return m, false
	}
	return m, kinds[m.kind]
}

// Which variants each side may receive.
var (
	clientKinds = map[string]bool{kindAuthenticate: true, kindHello: true, kindAccept: true}
	serverKinds = map[string]bool{kindChallenge: true, kindHello: true, kindHeartbeat: true, kindConnection: true, kindError: true}
)

// unmarshalMessage decodes the JSON text of one frame with serde_json's rules for an externally tagged enum
// restricted to the variants in kinds: exactly one key, no trailing data, valid UTF-8, values of the exact type.
func unmarshalMessage(data []byte, kinds map[string]bool) (message, error) {
	if m, ok := unmarshalCommon(data, kinds); ok {
		return m, nil
	}
	return unmarshalStrict(data, kinds)
}

// unmarshalStrict is unmarshalMessage through encoding/json, for every form serde_json accepts.
func unmarshalStrict(data []byte, kinds map[string]bool) (message, error) {
	fail := func(format string, args ...any) (message, error) {
		return message{}, fmt.Errorf("%w: unable to parse message: "+format, append([]any{ErrProtocol}, args...)...)
	}
	if !utf8.Valid(data) {
		return fail("invalid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return fail("%v", err)
	}
	var m message
	switch tok := tok.(type) {
	case string: // unit variant
		if tok != kindHeartbeat || !kinds[tok] {
			return fail("unknown unit variant %q", tok)
		}
		m.kind = tok
	case json.Delim:
		if tok != '{' {
			return fail("expected an object or a string")
		}
		key, err := dec.Token()
		if err != nil {
			return fail("%v", err)
		}
		m.kind, _ = key.(string)
		if !kinds[m.kind] {
			return fail("unknown variant %q", key)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return fail("%v", err)
		}
		if err := m.setValue(raw); err != nil {
			return fail("%s: %v", m.kind, err)
		}
		if end, err := dec.Token(); err != nil || end != json.Delim('}') {
			return fail("expected exactly one key")
		}
	default:
		return fail("expected an object or a string")
	}
	if _, err := dec.Token(); err != io.EOF {
		return fail("trailing characters")
	}
	return m, nil
}

func (m *message) setValue(raw json.RawMessage) error {
	switch m.kind {
	case kindHeartbeat: // serde accepts {"Heartbeat":null}
		if string(raw) != "null" {
			return errors.New("expected null")
		}
		return nil
	case kindHello:
		n, err := strconv.ParseUint(string(raw), 10, 16)
		if err != nil {
			return fmt.Errorf("expected a port number 0-65535, got %s", raw)
		}
		m.port = uint16(n)
		return nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return errors.New("expected a string")
	}
	switch m.kind {
	case kindAccept, kindChallenge, kindConnection:
		id, err := parseUUID(s)
		if err != nil {
			return err
		}
		m.id = id
	default:
		m.text = s
	}
	return nil
}

// frameReader reads NUL-delimited frames. Its buffer holds one maximal frame, so whatever it has read past the
// last frame is at most a few hundred bytes, returned by buffered for the relay to forward first.
type frameReader struct {
	br *bufio.Reader
}

func newFrameReader(r io.Reader) *frameReader {
	return &frameReader{br: bufio.NewReaderSize(r, MaxFrameLength+1)}
}

// readFrame returns the JSON text of the next frame (valid until the next call). io.EOF means the peer closed
// cleanly between frames; ErrFrameTooLong a frame longer than MaxFrameLength.
func (r *frameReader) readFrame() ([]byte, error) {
	frame, err := r.br.ReadSlice(0)
	switch {
	case err == nil:
		return frame[:len(frame)-1], nil
	case errors.Is(err, bufio.ErrBufferFull):
		return nil, ErrFrameTooLong
	case errors.Is(err, io.EOF) && len(frame) > 0:
		return nil, fmt.Errorf("%w: connection closed inside a frame", ErrProtocol)
	default:
		return nil, err
	}
}

// buffered returns the bytes read from the connection beyond the last frame.
func (r *frameReader) buffered() []byte {
	b, _ := r.br.Peek(r.br.Buffered())
	return bytes.Clone(b)
}

// readMessage reads and decodes the next frame.
func (r *frameReader) readMessage(kinds map[string]bool) (message, error) {
	frame, err := r.readFrame()
	if err != nil {
		return message{}, err
	}
	return unmarshalMessage(frame, kinds)
}

// appendFrame appends m as a frame (JSON text and NUL) to dst.
func appendFrame(dst []byte, m message) ([]byte, error) {
	start := len(dst)
	out, err := m.appendJSON(dst)
	if err != nil {
		return dst, err
	}
	if n := len(out) - start; n > MaxFrameLength {
		return dst, fmt.Errorf("%w: %s message of %d bytes", ErrFrameTooLong, m.kind, n)
	}
	return append(out, 0), nil
}

// writeMessage writes m as one frame in one Write call.
func writeMessage(w io.Writer, m message) error {
	var buf [96]byte
	frame, err := appendFrame(buf[:0], m)
	if err != nil {
		return err
	}
	_, err = w.Write(frame)
	return err
}

// uuid is a 16-byte UUID, written in the lowercase hyphenated form.
type uuid [16]byte

func newUUID() uuid {
	var u uuid
	_, _ = rand.Read(u[:])  // crypto/rand.Read never fails
	u[6] = u[6]&0x0f | 0x40 // version 4
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	return u
}

func (u uuid) String() string {
	var b [36]byte
	return string(u.appendText(b[:0]))
}

// appendText appends the hyphenated lowercase form of u to dst.
func (u uuid) appendText(dst []byte) []byte {
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:])
	return append(dst, b[:]...)
}

// parseUUID accepts the textual forms the uuid crate parses: hyphenated, simple (32 hex digits), braced and
// urn:uuid: prefixed, in either case.
func parseUUID(s string) (uuid, error) {
	var u uuid
	orig := s
	switch {
	case len(s) == 45 && (s[:9] == "urn:uuid:" || s[:9] == "URN:UUID:"):
		s = s[9:]
	case len(s) == 38 && s[0] == '{' && s[37] == '}':
		s = s[1:37]
	}
	var digits []byte
	switch len(s) {
	case 32:
		digits = []byte(s)
	case 36:
		if s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
			return u, fmt.Errorf("invalid UUID %q", orig)
		}
		digits = []byte(s[0:8] + s[9:13] + s[14:18] + s[19:23] + s[24:36])
	default:
		return u, fmt.Errorf("invalid UUID %q", orig)
	}
	if _, err := hex.Decode(u[:], digits); err != nil {
		return u, fmt.Errorf("invalid UUID %q", orig)
	}
	return u, nil
}

// authenticator computes and checks answers to challenges for one secret.
type authenticator struct {
	key [sha256.Size]byte
}

func newAuthenticator(secret string) *authenticator {
	return &authenticator{key: sha256.Sum256([]byte(secret))}
}

func (a *authenticator) mac(challenge uuid) []byte {
	h := hmac.New(sha256.New, a.key[:])
	h.Write(challenge[:])
	return h.Sum(nil)
}

// answer returns the Authenticate tag for challenge.
func (a *authenticator) answer(challenge uuid) string {
	return hex.EncodeToString(a.mac(challenge))
}

// valid reports in constant time whether tag answers challenge.
func (a *authenticator) valid(challenge uuid, tag string) bool {
	got, err := hex.DecodeString(tag)
	if err != nil {
		return false
	}
	return hmac.Equal(got, a.mac(challenge))
}
