// Package tunnel owns the lifecycle of the bore tunnels that expose local resources: it checks that each local
// service accepts connections, opens one tunnel per resource concurrently through an engine (the native client of
// pkg/bore, or an external bore binary), and keeps the tunnels up until they are closed — it runs the one
// reconnection loop of stptunnel, with failover between bore servers — and it records a detached session in
// the state directory so that another process can inspect and end it.
//
// Guarantees:
//   - Open returns only once every tunnel is up, or with an error that names the resource and, for each bore
//     server tried, the server and the cause (see Cause); it leaves nothing running when it fails.
//   - A tunnel tries its servers (Spec.Servers) in order. A start failure is retried Options.Retries times,
//     Options.RetryDelay apart (2 and 2 s by default), then the tunnel moves to the next server; a server that
//     refuses the secret is not retried. Each move is reported (Switching).
//   - A link that ends is the session's to replace: Down, then reconnection with backoff (go-retry) on the same
//     server, asking for the same public port first. A refused secret is final for that server; any other
//     failure is retried until Options.ReconnectWindow (30 s) has passed, then the tunnel moves to the next
//     server in the list, round to the first. It never goes back to a server it left while the one it is on
//     works. Up, Moved (a new address or server: the functions must follow) or, when every server was tried in
//     vain, Lost.
//   - Session.Close stops every tunnel (and every external bore process) and returns once no goroutine the
//     session started is left.
//   - No secret is ever put on a command line: servers name their secret's variable (ParseServers), and the
//     external engine gives bore the secret through BORE_SECRET.
//   - Under a tunnel host (Server.TunnelHost: a server inside the functions' VPC, dialled at another address)
//     every public address reported (Tunnels, events) is TUNNEL_HOST:PORT, as the functions reach it; the
//     document's tunnel keeps the dialled server in "server", and DialedAddr is where this machine reaches the
//     public port.
//
// API: the tool's own; it may change.
package tunnel
