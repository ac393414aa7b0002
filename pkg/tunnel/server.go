package tunnel

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	"github.com/stptunnel/stptunnel/pkg/bore"
	"github.com/stptunnel/stptunnel/pkg/doc"
)

// Server is one bore server a tunnel may use.
type Server struct {
	// Addr is the server as the user named it, HOST[:CONTROL_PORT]; it is what the document's tunnels[].server
	// says.
	Addr string `json:"addr"`
	// Secret authenticates to this server; empty means none.
	Secret string `json:"secret,omitempty"`
	// TunnelHost, when set, is the host the functions reach this server by, where it differs from Addr's (a
	// server inside their VPC: this machine dials its public address, they its private one). The tunnels' public
	// addresses name it; the document's tunnels[].server stays Addr.
	TunnelHost string `json:"tunnelHost,omitempty"`
}

// public is addr, as an engine reports it (the dialled host and the public port), as the functions see it.
func (s Server) public(addr string) string {
	if s.TunnelHost == "" {
		return addr
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return net.JoinHostPort(s.TunnelHost, port)
}

// DialedAddr is where this machine reaches tunnel t's public port: the host of the server it dialled (which
// differs from the public address's host under a tunnel host), the public address's port.
func DialedAddr(t doc.Tunnel) string {
	host, _, err := bore.SplitServer(t.Server)
	_, port, perr := net.SplitHostPort(t.Public)
	if err != nil || perr != nil || host == "" {
		return t.Public
	}
	return net.JoinHostPort(host, port)
}

// ParseTunnelHost checks a --tunnel-host value: an IP address (IPv6 with or without brackets) or a DNS name,
// without a port (the port is the one the server hands out). It returns the host as the variables will hold it.
func ParseTunnelHost(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", nil
	}
	if addr, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")); err == nil {
		if addr.Zone() != "" {
			return "", fmt.Errorf("%q: a zoned address means nothing to a function", s)
		}
		return addr.Unmap().String(), nil
	}
	if _, port, err := net.SplitHostPort(s); err == nil && isDigits(port) {
		return "", fmt.Errorf("%q: want a host without a port (the tunnel's port is the one the server hands out)", s)
	}
	if !hostName.MatchString(s) {
		return "", fmt.Errorf("%q: want an IP address or a DNS name", s)
	}
	return strings.ToLower(s), nil
}

func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// hostName is a DNS name: dot-separated labels of letters, digits and inner hyphens.
var hostName = regexp.MustCompile(`^(?i)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?$`)

// envName is what may follow # in a server entry: a portable environment variable name.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ParseServers reads the bore servers of `--to` / BORE_SERVER in order of preference. Each entry is
// HOST[:CONTROL_PORT] or a comma-separated list of them; an entry may end with #VAR, the environment variable
// that holds that server's secret (read with getenv, so the secret itself never appears on a command line).
// A server without #VAR uses secret (--secret / BORE_SECRET). No entry at all means DefaultServer. Errors name
// the entry, never a secret.
func ParseServers(entries []string, secret string, getenv func(string) string) ([]Server, error) {
	var out []Server
	seen := map[string]string{}
	for _, entry := range entries {
		for _, s := range strings.Split(entry, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			srv, key, err := parseServer(s, secret, getenv)
			if err != nil {
				return nil, fmt.Errorf("bore server %q: %w", s, err)
			}
			if first, dup := seen[key]; dup {
				return nil, fmt.Errorf("bore server %q: listed twice (as %q too)", s, first)
			}
			seen[key] = s
			out = append(out, srv)
		}
	}
	if len(out) == 0 {
		out = []Server{{Addr: DefaultServer, Secret: secret}}
	}
	return out, nil
}

// parseServer reads one entry; key identifies the server whatever its spelling (bore.pub = bore.pub:7835).
func parseServer(s, secret string, getenv func(string) string) (srv Server, key string, err error) {
	addr, variable, hasVar := strings.Cut(s, "#")
	addr = strings.TrimSpace(addr)
	host, port, err := bore.SplitServer(addr)
	if err != nil {
		return Server{}, "", err
	}
	if host == "" || strings.ContainsAny(host, " /@") {
		return Server{}, "", errors.New("want HOST[:CONTROL_PORT][#SECRET_VARIABLE]")
	}
	srv = Server{Addr: addr, Secret: secret}
	if hasVar {
		variable = strings.TrimSpace(variable)
		if !envName.MatchString(variable) {
			return Server{}, "", fmt.Errorf("%q after # is not an environment variable name: write HOST[:PORT]#VARIABLE, the variable holding the server's secret", variable)
		}
		v := getenv(variable)
		if v == "" {
			return Server{}, "", fmt.Errorf("its secret variable %s is not set (or empty)", variable)
		}
		srv.Secret = v
	}
	return srv, net.JoinHostPort(strings.ToLower(host), strconv.Itoa(port)), nil
}

// Addrs lists the servers' addresses, for messages.
func Addrs(servers []Server) string {
	addrs := make([]string, len(servers))
	for i, s := range servers {
		addrs[i] = s.Addr
	}
	return strings.Join(addrs, ", ")
}
