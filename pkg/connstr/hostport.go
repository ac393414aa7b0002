package connstr

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Resource types, as written in `--local NAME:TYPE=URL` and in the document.
const (
	TypePostgres = "postgres"
	TypeMySQL    = "mysql"
	TypeRedis    = "redis"
	TypeDynamoDB = "dynamodb"
	TypeTCP      = "tcp"
)

// HostPort is a network address. Host never carries IPv6 brackets.
type HostPort struct {
	Host string
	Port int
}

// String formats the address as "host:port", bracketing an IPv6 host
// ("[::1]:5432"). A zero port is left out.
func (hp HostPort) String() string {
	host := hp.Host
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if hp.Port == 0 {
		return host
	}
	return host + ":" + strconv.Itoa(hp.Port)
}

// ParseHostPort parses "host:port" or "[ipv6]:port". The port is required and
// must be in 1..65535.
func ParseHostPort(s string) (HostPort, error) {
	hp, err := parseAddr(s, 0)
	if err != nil {
		return HostPort{}, fmt.Errorf("address %q: %w", s, err)
	}
	return hp, nil
}

// parseAddr parses host, host:port, [ipv6] or [ipv6]:port; a missing port is
// defaultPort, an error when that is 0. Its errors never quote s, which may
// be a mis-split piece of a URL's userinfo.
func parseAddr(s string, defaultPort int) (HostPort, error) {
	host, port := s, ""
	if strings.HasPrefix(s, "[") {
		closing := strings.IndexByte(s, ']')
		if closing < 0 {
			return HostPort{}, fmt.Errorf(`missing "]" after the IPv6 address`)
		}
		host, port = s[1:closing], s[closing+1:]
		if !isIP(host) {
			return HostPort{}, fmt.Errorf("not an IPv6 address inside brackets")
		}
		if port != "" && port[0] != ':' {
			return HostPort{}, fmt.Errorf(`want ":PORT" after the IPv6 address`)
		}
		port = strings.TrimPrefix(port, ":")
	} else if c := strings.LastIndexByte(s, ':'); c >= 0 {
		host, port = s[:c], s[c+1:]
		if strings.Contains(host, ":") {
			return HostPort{}, fmt.Errorf("an IPv6 address must be in brackets: [ADDRESS]:PORT")
		}
	}
	if err := checkHost(host); err != nil {
		return HostPort{}, err
	}
	if port == "" && defaultPort != 0 {
		return HostPort{Host: host, Port: defaultPort}, nil
	}
	p, err := parsePort(port)
	if err != nil {
		return HostPort{}, err
	}
	return HostPort{Host: host, Port: p}, nil
}

// checkHost rejects hosts that cannot be written into a connection string
// without changing its meaning.
func checkHost(host string) error {
	if host == "" {
		return fmt.Errorf("missing host")
	}
	if i := strings.IndexAny(host, " \t\r\n/@,;?#[]\"'()"); i >= 0 {
		return fmt.Errorf("host contains %q", host[i])
	}
	return nil
}

// parsePort parses a decimal TCP port in 1..65535.
func parsePort(s string) (int, error) {
	if s == "" {
		return 0, fmt.Errorf("missing port")
	}
	if len(s) > 5 || strings.Trim(s, "0123456789") != "" {
		return 0, fmt.Errorf("port is not a number")
	}
	p, _ := strconv.Atoi(s)
	if p < 1 || p > 65535 {
		return 0, fmt.Errorf("port %d out of range 1-65535", p)
	}
	return p, nil
}

// IsLocalHost reports whether host names this machine as seen from a
// developer's database client: localhost, any 127.x.y.z, ::1 (bracketed or
// not), 0.0.0.0 and host.docker.internal. Case does not matter.
func IsLocalHost(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	switch host {
	case "localhost", "host.docker.internal", "0.0.0.0":
		return true
	}
	addr, err := netip.ParseAddr(host)
	if err != nil || addr.Zone() != "" {
		return false
	}
	addr = addr.Unmap()
	return addr.IsLoopback() || (addr.Is4() && addr.IsUnspecified())
}

// DefaultPort is the port a client of the given resource type uses when none
// is written: postgres 5432, mysql 3306, redis 6379, dynamodb 8000 (DynamoDB
// Local), and 0 for tcp and unknown types.
func DefaultPort(typ string) int {
	switch typ {
	case TypePostgres:
		return 5432
	case TypeMySQL:
		return 3306
	case TypeRedis:
		return 6379
	case TypeDynamoDB:
		return 8000
	}
	return 0
}

// sameAddr reports whether an entry at addr is the address want: the same
// host (any spelling of this machine counts as the same host) and port.
func sameAddr(addr, want HostPort) bool {
	if addr.Port != want.Port {
		return false
	}
	if IsLocalHost(addr.Host) && IsLocalHost(want.Host) {
		return true
	}
	return strings.EqualFold(addr.Host, want.Host)
}
