// Package bore implements the bore 0.5 tunnel protocol (github.com/ekzhang/bore): a native client that exposes
// a local TCP port on a bore server, and a native server that hands out public ports. Both ends interoperate
// with the upstream Rust implementation in either direction.
//
// # Wire format
//
// A control connection (TCP, server port 7835 by default) carries frames: UTF-8 JSON text followed by one NUL
// byte. The JSON text of a frame is at most 256 bytes; a longer frame is a protocol error and the receiver drops
// the connection. Messages are serde's externally tagged enums: a variant with a value is an object with exactly
// one key ({"Hello":54321}), a variant without one is a string ("Heartbeat").
//
//	client → server: {"Authenticate":"<hex tag>"}  {"Hello":<u16 port, 0 = any>}  {"Accept":"<uuid>"}
//	server → client: {"Challenge":"<uuid>"}  {"Hello":<u16 public port>}  "Heartbeat"  {"Connection":"<uuid>"}  {"Error":"<text>"}
//
// With a secret the server opens every connection with Challenge(uuid); the client answers Authenticate(tag),
// tag = lowercase hex of HMAC-SHA256(key = SHA-256(secret), message = the 16 raw bytes of the uuid). Each initial
// message must arrive within 3 s. After Hello the server sends Heartbeat every 500 ms and Connection(id) for each
// visitor on the public port; the client opens a new control connection, authenticates, sends Accept(id), and
// from then on that connection carries the visitor's raw bytes. Unaccepted visitors are dropped after 10 s. A
// request for port 0 tries 150 random ports of the server's range. Failures are reported as Error frames whose
// texts bore clients know ("port already in use", "invalid secret", ...).
//
// # Guarantees
//
// Beyond bore, the Client detects a dead link (no frame for HeartbeatTimeout) and then ends, Wait saying why
// (ErrLinkLost); like bore it does not reconnect by itself: pkg/tunnel runs the one reconnection loop. While
// visitors keep coming it keeps one connection to the server dialled (and authenticated) ahead, so a visitor's
// Accept goes out at once. The Server restricts who may reach tunnelled ports (Allow), caps tunnels and waiting
// visitors per client address, refuses new visitors to a tunnel whose client has stopped accepting (AcceptStall),
// checks secrets in constant time, logs each tunnel and connection with byte counts (refusals once per burst, with
// counts) and exposes counters (Stats). Both relay bytes with correct half-close, waiting for data without
// holding a buffer or a pipe, moving small chunks through pooled buffers and bulk with splice(2) on Linux, and
// both leave no goroutine behind once Close (or the cancellation of the context given to Start) returns. A process
// whose work is running clients (a developer's side of the tunnels) sets up connections faster at GOMAXPROCS 1:
// LimitClientProcs.
//
// Errors are wrapped so callers can tell the cause with errors.Is: ErrUnreachable (and ErrConnectionRefused),
// ErrAuth (ErrInvalidSecret, ErrSecretRequired, ErrSecretNotRequired), ErrPortUnavailable, ErrProtocol; an
// Error frame from the server is a *ServerError.
//
// API: meant for other programs (a Go bore client and server), and kept compatible within a major version.
package bore
