// Package connstr recognises the local addresses inside connection strings,
// rewrites them to a tunnel's public address, parses `--local` declarations,
// derives Stacktape's SNAKE_CASE names, redacts passwords and warns about what
// exposing a local database through a tunnel implies.
//
// Recognised forms: URLs (with userinfo, percent-encoding, query, fragment and
// comma-separated multi-host authorities, JDBC's "jdbc:" prefix included),
// libpq and ADO.NET style key=value DSNs (host/server and port keys, quoted or
// not, separated by spaces or semicolons), Go MySQL DSNs
// (user:pass@tcp(host:port)/db) and bare HOST:PORT tokens anywhere in a value.
//
// Guarantees:
//   - Rewrite changes only the bytes of the host and port of the entries that
//     match the local address; every other byte (percent-encoding, query,
//     other hosts, quoting) is left exactly as it was. Nothing goes through
//     net/url, so nothing is re-encoded.
//   - An entry without an explicit port gets the public port added (":PORT"
//     in URL-like forms, " port=PORT" in a key=value DSN), so rewriting back
//     from the public address to the local one restores the original value
//     exactly whenever every matched entry had an explicit port.
//   - A value the tunnel cannot carry (unix socket, TLS that verifies the
//     local hostname) is reported as an *Unsupported error and left unchanged,
//     never silently broken.
//   - Redact hides every password it can recognise, in any supported form and
//     anywhere in a longer text; when a form is ambiguous it hides too much
//     rather than too little. Error messages from this package never contain a
//     password.
//
// API: meant for other programs, and kept compatible within a major version.
package connstr
