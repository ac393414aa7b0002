// Package tunnel owns the lifecycle of the bore tunnels that expose local resources: it checks that each local
// service accepts connections, opens one tunnel per resource concurrently through an engine (the native client of
// pkg/bore, or an external bore binary), retries start failures, supervises the tunnels once they are up
// (reporting a tunnel that dies, reconnecting it with backoff and reporting its new public address), and records
// a detached session in the state directory so that another process can inspect and end it.
//
// Guarantees:
//   - Open returns only once every tunnel is up, or with an error that names the resource, the bore server and
//     the cause (see Cause); it leaves nothing running when it fails.
//   - A start failure is retried Options.Retries times, Options.RetryDelay apart (2 and 2 s by default);
//     an authentication failure is not retried.
//   - Session.Close stops every tunnel (and every external bore process) and returns once no goroutine the
//     session started is left.
//   - The external engine never puts the secret on a command line: bore reads it from BORE_SECRET.
//
// API: the tool's own; it may change.
package tunnel
