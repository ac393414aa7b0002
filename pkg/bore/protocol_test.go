package bore

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

// vectors mirrors assets/bore/bore-protocol.json.
type vectors struct {
	ControlPort int `json:"control_port"`
	Frame       struct {
		MaxFrameBytes           int `json:"max_frame_bytes"`
		HandshakeTimeoutSeconds int `json:"handshake_timeout_seconds"`
	} `json:"frame"`
	ServerBehaviour struct {
		HeartbeatIntervalMS            int      `json:"heartbeat_interval_ms"`
		PendingConnectionExpirySeconds int      `json:"pending_connection_expiry_seconds"`
		RandomPortAttempts             int      `json:"random_port_attempts"`
		DefaultPortRange               [2]int   `json:"default_port_range"`
		ErrorStrings                   []string `json:"error_strings"`
	} `json:"server_behaviour"`
	ClientLogLine string `json:"client_log_line"`
	Auth          struct {
		Vectors []struct{ Secret, Challenge, Answer string } `json:"vectors"`
	} `json:"auth"`
	Frames []struct {
		Direction string          `json:"direction"`
		Message   string          `json:"message"`
		Value     json.RawMessage `json:"value"`
		JSON      string          `json:"json"`
	} `json:"frames"`
}

func loadVectors(t testing.TB) vectors {
	t.Helper()
	data, err := os.ReadFile("../../assets/bore/bore-protocol.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Auth.Vectors) == 0 || len(v.Frames) == 0 {
		t.Fatal("no vectors in bore-protocol.json")
	}
	return v
}

func TestVectorConstants(t *testing.T) {
	v := loadVectors(t)
	s, err := NewServer(ServerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	type check struct {
		name      string
		got, want int64
	}
	second, milli := int64(time.Second), int64(time.Millisecond)
	checks := []check{
		{"control_port", DefaultControlPort, int64(v.ControlPort)},
		{"max_frame_bytes", MaxFrameLength, int64(v.Frame.MaxFrameBytes)},
		{"handshake_timeout", int64(DefaultHandshakeTimeout), int64(v.Frame.HandshakeTimeoutSeconds) * second},
		{"heartbeat_interval", int64(HeartbeatInterval), int64(v.ServerBehaviour.HeartbeatIntervalMS) * milli},
		{"pending_expiry", int64(PendingExpiry), int64(v.ServerBehaviour.PendingConnectionExpirySeconds) * second},
		{"random_port_attempts", RandomPortAttempts, int64(v.ServerBehaviour.RandomPortAttempts)},
		{"server default min port", int64(s.cfg.MinPort), int64(v.ServerBehaviour.DefaultPortRange[0])},
		{"server default max port", int64(s.cfg.MaxPort), int64(v.ServerBehaviour.DefaultPortRange[1])},
		{"server default heartbeat", int64(s.cfg.HeartbeatInterval), int64(HeartbeatInterval)},
		{"server default expiry", int64(s.cfg.PendingExpiry), int64(PendingExpiry)},
		{"server default handshake timeout", int64(s.cfg.HandshakeTimeout), int64(DefaultHandshakeTimeout)},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
}

// Every error string bore sends must be one we send and one a caller can classify.
func TestVectorErrorStrings(t *testing.T) {
	v := loadVectors(t)
	ours := map[string]error{
		errTextPortInUse:       ErrPortUnavailable,
		errTextPermission:      ErrPortUnavailable,
		errTextBindFailed:      ErrPortUnavailable,
		errTextPortNotInRange:  ErrPortUnavailable,
		errTextNoPortAvailable: ErrPortUnavailable,
		errTextInvalidSecret:   ErrInvalidSecret,
		errTextSecretRequired:  ErrSecretRequired,
	}
	if len(v.ServerBehaviour.ErrorStrings) != len(ours) {
		t.Errorf("vectors list %d error strings, we know %d", len(v.ServerBehaviour.ErrorStrings), len(ours))
	}
	for _, text := range v.ServerBehaviour.ErrorStrings {
		want, ok := ours[text]
		if !ok {
			t.Errorf("error string %q is not one the server sends", text)
			continue
		}
		err := error(&ServerError{Message: text})
		if !errors.Is(err, want) {
			t.Errorf("ServerError(%q) is not %v", text, want)
		}
		if got := err.Error(); got != "server error: "+text {
			t.Errorf("ServerError(%q).Error() = %q", text, got)
		}
	}
	if !errors.Is(&ServerError{Message: errTextInvalidSecret}, ErrAuth) {
		t.Error("invalid secret is not ErrAuth")
	}
	if errors.Is(&ServerError{Message: "something else"}, ErrAuth) {
		t.Error("an unknown server error is ErrAuth")
	}
}

func TestVectorAuth(t *testing.T) {
	for _, vec := range loadVectors(t).Auth.Vectors {
		challenge, err := parseUUID(vec.Challenge)
		if err != nil {
			t.Fatal(err)
		}
		a := newAuthenticator(vec.Secret)
		if got := a.answer(challenge); got != vec.Answer {
			t.Errorf("answer(%q, %s) = %s, want %s", vec.Secret, vec.Challenge, got, vec.Answer)
		}
		if !a.valid(challenge, vec.Answer) || !a.valid(challenge, strings.ToUpper(vec.Answer)) {
			t.Errorf("valid(%q, %s) rejects the answer", vec.Secret, vec.Challenge)
		}
		wrong := []byte(vec.Answer)
		wrong[0] ^= 1
		for _, tag := range []string{string(wrong), vec.Answer[:62], "", "zz" + vec.Answer[2:], vec.Answer + "00"} {
			if a.valid(challenge, tag) {
				t.Errorf("valid(%q, %s) accepts %q", vec.Secret, vec.Challenge, tag)
			}
		}
		if newAuthenticator(vec.Secret+"x").valid(challenge, vec.Answer) {
			t.Errorf("another secret accepts the answer for %q", vec.Secret)
		}
	}
}

func TestVectorFrames(t *testing.T) {
	for _, f := range loadVectors(t).Frames {
		t.Run(f.Direction+"/"+f.Message, func(t *testing.T) {
			kinds := clientKinds
			if f.Direction == "server" {
				kinds = serverKinds
			}
			m, err := unmarshalMessage([]byte(f.JSON), kinds)
			if err != nil {
				t.Fatalf("decoding %s: %v", f.JSON, err)
			}
			if m.kind != f.Message {
				t.Errorf("kind = %s, want %s", m.kind, f.Message)
			}
			var want any
			if err := json.Unmarshal(f.Value, &want); err != nil {
				t.Fatal(err)
			}
			var got any
			switch m.kind {
			case kindHello:
				got = float64(m.port)
			case kindAccept, kindChallenge, kindConnection:
				got = m.id.String()
			case kindHeartbeat:
				got = nil
			default:
				got = m.text
			}
			if got != want {
				t.Errorf("value = %v, want %v", got, want)
			}
			frame, err := appendFrame(nil, m)
			if err != nil {
				t.Fatal(err)
			}
			if string(frame) != f.JSON+"\x00" {
				t.Errorf("encoded %q, want %q", frame, f.JSON+"\x00")
			}
			r := newFrameReader(bytes.NewReader(frame))
			back, err := r.readMessage(kinds)
			if err != nil || back != m {
				t.Errorf("read back %v, %v; want %v", back, err, m)
			}
		})
	}
}

func TestMaxFrameLength(t *testing.T) {
	// {"Error":"aaa…"} is 12 bytes plus the text.
	exact := message{kind: kindError, text: strings.Repeat("a", MaxFrameLength-12)}
	frame, err := appendFrame(nil, exact)
	if err != nil || len(frame) != MaxFrameLength+1 {
		t.Fatalf("256-byte frame: len %d, %v", len(frame), err)
	}
	m, err := newFrameReader(bytes.NewReader(frame)).readMessage(serverKinds)
	if err != nil || m != exact {
		t.Fatalf("reading a 256-byte frame: %v, %v", m, err)
	}

	tooLong := message{kind: kindError, text: exact.text + "a"}
	if _, err := appendFrame(nil, tooLong); !errors.Is(err, ErrFrameTooLong) {
		t.Errorf("encoding a 257-byte frame: %v", err)
	}
	raw := append(bytes.Repeat([]byte("a"), MaxFrameLength+1), 0)
	if _, err := newFrameReader(bytes.NewReader(raw)).readFrame(); !errors.Is(err, ErrFrameTooLong) || !errors.Is(err, ErrProtocol) {
		t.Errorf("reading a 257-byte frame: %v", err)
	}
	// A frame that is never terminated is cut off after 257 bytes, whatever follows.
	endless := io.MultiReader(bytes.NewReader(bytes.Repeat([]byte{'x'}, 1<<20)))
	if _, err := newFrameReader(endless).readFrame(); !errors.Is(err, ErrFrameTooLong) {
		t.Errorf("reading an endless frame: %v", err)
	}
}

func TestFrameReader(t *testing.T) {
	input := "{\"Hello\":1}\x00\"Heartbeat\"\x00{\"Connection\":\"ffffffff-ffff-4fff-bfff-ffffffffffff\"}\x00raw bytes"
	r := newFrameReader(strings.NewReader(input))
	var kinds []string
	for range 3 {
		m, err := r.readMessage(serverKinds)
		if err != nil {
			t.Fatal(err)
		}
		kinds = append(kinds, m.kind)
	}
	if strings.Join(kinds, ",") != "Hello,Heartbeat,Connection" {
		t.Errorf("kinds = %v", kinds)
	}
	if got := string(r.buffered()); got != "raw bytes" {
		t.Errorf("buffered = %q, want the bytes after the last frame", got)
	}
	if _, err := r.readFrame(); !errors.Is(err, ErrProtocol) {
		t.Errorf("EOF inside a frame: %v", err)
	}
	if _, err := newFrameReader(strings.NewReader("")).readFrame(); err != io.EOF {
		t.Errorf("EOF between frames: %v, want io.EOF", err)
	}
}

func TestUnmarshalMessage(t *testing.T) {
	good := []struct {
		json  string
		kinds map[string]bool
		want  message
	}{
		{`{"Hello":65535}`, clientKinds, message{kind: kindHello, port: 65535}},
		{` { "Hello" : 7 } `, clientKinds, message{kind: kindHello, port: 7}},
		{`{"Heartbeat":null}`, serverKinds, message{kind: kindHeartbeat}},
		{`{"Error":"a \"quoted\" \u00e9 <b>"}`, serverKinds, message{kind: kindError, text: `a "quoted" é <b>`}},
		{`{"Accept":"FFFFFFFF-FFFF-4FFF-BFFF-FFFFFFFFFFFF"}`, clientKinds, message{kind: kindAccept, id: mustUUID(t, "ffffffff-ffff-4fff-bfff-ffffffffffff")}},
		{`{"Accept":"ffffffffffff4fffbfffffffffffffff"}`, clientKinds, message{kind: kindAccept, id: mustUUID(t, "ffffffff-ffff-4fff-bfff-ffffffffffff")}},
		{`{"Accept":"{ffffffff-ffff-4fff-bfff-ffffffffffff}"}`, clientKinds, message{kind: kindAccept, id: mustUUID(t, "ffffffff-ffff-4fff-bfff-ffffffffffff")}},
		{`{"Accept":"urn:uuid:ffffffff-ffff-4fff-bfff-ffffffffffff"}`, clientKinds, message{kind: kindAccept, id: mustUUID(t, "ffffffff-ffff-4fff-bfff-ffffffffffff")}},
	}
	for _, g := range good {
		m, err := unmarshalMessage([]byte(g.json), g.kinds)
		if err != nil || m != g.want {
			t.Errorf("unmarshal %s = %v, %v; want %v", g.json, m, err, g.want)
		}
	}
	bad := []struct {
		json  string
		kinds map[string]bool
	}{
		{``, clientKinds},
		{`{}`, clientKinds},
		{`[]`, clientKinds},
		{`null`, serverKinds},
		{`"Hello"`, clientKinds},
		{`"Heartbeat"`, clientKinds}, // a server-only message
		{`{"Challenge":"ffffffff-ffff-4fff-bfff-ffffffffffff"}`, clientKinds},
		{`{"Authenticate":"ab"}`, serverKinds},
		{`{"hello":1}`, clientKinds},
		{`{"Hello":65536}`, clientKinds},
		{`{"Hello":-1}`, clientKinds},
		{`{"Hello":1.0}`, clientKinds},
		{`{"Hello":1e2}`, clientKinds},
		{`{"Hello":"1"}`, clientKinds},
		{`{"Hello":1,"Hello":2}`, clientKinds},
		{`{"Hello":1,"Accept":"ffffffff-ffff-4fff-bfff-ffffffffffff"}`, clientKinds},
		{`{"Hello":1}{"Hello":1}`, clientKinds},
		{`{"Hello":1} x`, clientKinds},
		{`{"Accept":"not a uuid"}`, clientKinds},
		{`{"Accept":"ffffffff-ffff-4fff-bfff-fffffffffff"}`, clientKinds},
		{`{"Accept":"ffffffff+ffff-4fff-bfff-ffffffffffff"}`, clientKinds},
		{`{"Accept":7}`, clientKinds},
		{`{"Heartbeat":1}`, serverKinds},
		{"{\"Error\":\"\xff\"}", serverKinds},
	}
	for _, b := range bad {
		if m, err := unmarshalMessage([]byte(b.json), b.kinds); !errors.Is(err, ErrProtocol) {
			t.Errorf("unmarshal %q = %v, %v; want ErrProtocol", b.json, m, err)
		}
	}
}

func mustUUID(t *testing.T, s string) uuid {
	t.Helper()
	u, err := parseUUID(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestNewUUID(t *testing.T) {
	a, b := newUUID(), newUUID()
	if a == b {
		t.Fatal("two random UUIDs are equal")
	}
	s := a.String()
	if len(s) != 36 || s[14] != '4' || !strings.ContainsRune("89ab", rune(s[19])) {
		t.Errorf("%s is not a version 4 UUID", s)
	}
	if back, err := parseUUID(s); err != nil || back != a {
		t.Errorf("parse(%s) = %v, %v", s, back, err)
	}
}

// FuzzReadFrame feeds arbitrary bytes to the frame reader and decoder: no panic, no frame over the limit, and
// every message that decodes encodes back to a frame that decodes to the same message.
func FuzzReadFrame(f *testing.F) {
	for _, v := range loadVectors(f).Frames {
		f.Add([]byte(v.JSON + "\x00"))
	}
	f.Add([]byte("{\"Hello\":1}\x00\"Heartbeat\"\x00tail"))
	f.Add(append(bytes.Repeat([]byte("a"), 300), 0))
	f.Add([]byte("{\"Error\":\"\\u0000\"}\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := newFrameReader(bytes.NewReader(data))
		for {
			frame, err := r.readFrame()
			if err != nil {
				return
			}
			if len(frame) > MaxFrameLength || bytes.IndexByte(frame, 0) >= 0 {
				t.Fatalf("frame of %d bytes: %q", len(frame), frame)
			}
			for _, kinds := range []map[string]bool{clientKinds, serverKinds} {
				m, err := unmarshalMessage(frame, kinds)
				if err != nil {
					if !errors.Is(err, ErrProtocol) {
						t.Fatalf("decode error %v is not ErrProtocol", err)
					}
					continue
				}
				enc, err := appendFrame(nil, m)
				if err != nil {
					if errors.Is(err, ErrFrameTooLong) {
						continue // a long Error text written with fewer escapes than we use
					}
					t.Fatalf("re-encoding %v: %v", m, err)
				}
				back, err := newFrameReader(bytes.NewReader(enc)).readMessage(kinds)
				if err != nil || back != m {
					t.Fatalf("round trip of %q: %v, %v; want %v", frame, back, err, m)
				}
			}
		}
	})
}

// The fast path decodes exactly the forms serde_json writes, and gives what the full decoder gives.
func TestUnmarshalCommonAgreesWithStrict(t *testing.T) {
	for _, text := range unmarshalSeeds {
		for _, kinds := range []map[string]bool{clientKinds, serverKinds} {
			checkCommonAgrees(t, []byte(text), kinds)
		}
	}
	for _, text := range []string{`"Heartbeat"`, `{"Hello":0}`, `{"Hello":65535}`,
		`{"Connection":"2b7a4c1e-9f3d-4e8a-b6c5-0d1e2f3a4b5c"}`, `{"Accept":"2B7A4C1E-9F3D-4E8A-B6C5-0D1E2F3A4B5C"}`,
		`{"Authenticate":"d12735575423a0e7f53a6191fd5ffe258d92297e771ff55f4ba8e4672bf05aba"}`} {
		kinds := serverKinds
		if strings.Contains(text, "Accept") || strings.Contains(text, "Authenticate") {
			kinds = clientKinds
		}
		if _, ok := unmarshalCommon([]byte(text), kinds); !ok {
			t.Errorf("%s: not decoded by the fast path", text)
		}
	}
}

var unmarshalSeeds = []string{
	`"Heartbeat"`, `{"Hello":0}`, `{"Hello":1}`, `{"Hello":65535}`, `{"Hello":65536}`, `{"Hello":01}`,
	`{"Hello":-1}`, `{"Hello":1.0}`, `{"Hello":1e3}`, `{"Hello": 1}`, `{"Hello":"1"}`, `{"Hello":123456}`,
	`{"Accept":"2b7a4c1e-9f3d-4e8a-b6c5-0d1e2f3a4b5c"}`, `{"Connection":"2b7a4c1e-9f3d-4e8a-b6c5-0d1e2f3a4b5c"}`,
	`{"Challenge":"2b7a4c1e-9f3d-4e8a-b6c5-0d1e2f3a4b5c"}`, `{"Accept":"2b7a4c1e9f3d4e8ab6c50d1e2f3a4b5c"}`,
	`{"Accept":"2b7a4c1e-9f3d-4e8a-b6c5-0d1e2f3a4b5\u0063"}`, `{"Accept":"2b7a4c1e-9f3d-4e8a-b6c5-0d1e2f3a4b5c" }`,
	`{"Accept":"2b7a4c1e-9f3d-4e8a-b6c5-0d1e2f3a4b5""}`, `{"Accept":"2b7a4c1e+9f3d-4e8a-b6c5-0d1e2f3a4b5c"}`,
	`{"Error":"x"}`, `{"Authenticate":"00ff"}`, `{"Heartbeat":null}`, `{"Hello":1,"Hello":2}`, `{"Hello":1}}`,
	`{"Accept":"{2b7a4c1e-9f3d-4e8a-b6c5-0d1e2f3a4b5c}"}`, `{"Hell\u006f":1}`, `{}`, `{"":1}`, `{"Hello":}`,
	`{"Authenticate":"0123abcdEF"}`, `{"Authenticate":""}`, `{"Authenticate":"0g"}`, `{"Authenticate":"00\u0030"}`,
	`{"Authenticate":"00"x"}`, `{"Authenticate":1}`,
}

func checkCommonAgrees(t testing.TB, data []byte, kinds map[string]bool) {
	fast, ok := unmarshalCommon(data, kinds)
	if !ok {
		return
	}
	strict, err := unmarshalStrict(data, kinds)
	if err != nil || strict != fast {
		t.Errorf("%q: fast path %v, full decoder %v, %v", data, fast, strict, err)
	}
}

func FuzzUnmarshalCommon(f *testing.F) {
	for _, s := range unmarshalSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkCommonAgrees(t, data, clientKinds)
		checkCommonAgrees(t, data, serverKinds)
	})
}
