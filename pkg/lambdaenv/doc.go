// Package lambdaenv points deployed Lambda functions' environment variables at tunnels (patch) and puts them back
// (restore), through aws-sdk-go-v2.
//
// Guarantees (CONTRACT.md §4, §5):
//   - Rewrite changes only the host and port of the entries at a resource's local address; CheckLimits refuses,
//     before any write, a map Lambda would refuse (reserved keys, 4 KB).
//   - Every write is read-modify-write on the latest revision with RevisionId; a function whose variables cannot
//     be read (KMS) is never written.
//   - Before each update the change is in the journal (STATE_DIR/journal.json, atomic, 0600), with everything
//     restore needs, so a crash at any instant can be finished by a restore from the journal alone.
//   - Restore is a per-key compare-and-swap: a key is put back (or removed, when the patch added it) only while it
//     still holds the value the patch wrote; keys changed since are kept and reported. Restore is idempotent.
//   - Every patch writes the session marker (STPTUNNEL_SESSION, marker.go) in the same update as the keys it
//     changes, and every restore removes it in the same update that puts them back: a function holding a session's
//     values carries that session's marker (unless it could not fit in 4 KB, which is reported), so it can be
//     restored from any machine. A function another session holds is never written, unless taken over.
//
// API: the tool's own; it may change.
package lambdaenv
