// Package cloudside is the code of the Lambda functions in the end-to-end tests: one Handler per database
// driver (pgx, go-sql-driver/mysql, go-redis, the SDK's DynamoDB client). Like a deployed function, a handler
// knows nothing but its own environment: it takes the connection string from its variables, writes a row (key,
// item) with the real driver, reads it back and answers what it read.
//
// A function in AWS cannot reach the developer's machine. The tests run both sides on one machine, so Cloud
// draws that line: the addresses of the developer's services (any spelling of this machine at their ports) are
// refused, first in the connection string, then again when the driver dials. A handler that succeeds therefore
// went through the tunnel, and the response says which addresses it dialed.
package cloudside

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/stptunnel/stptunnel/pkg/connstr"
)

// Handler is an awssim.Handler: the code of a function, run with the environment an invocation sees.
type Handler = func(ctx context.Context, env map[string]string, payload []byte) ([]byte, error)

// Cloud is the network a function sees: everything but the developer's machine.
type Cloud struct {
	// LocalPorts are the ports of the developer's services. A connection string naming this machine at one of
	// them, or a dial to it, is refused: in AWS it would reach the Lambda's own sandbox, not the database.
	LocalPorts []int
	// Timeout bounds one invocation. Default 20 s.
	Timeout time.Duration
}

// Request is a handler's payload. Empty fields take defaults: key "stptunnel", value "hello from the cloud".
type Request struct {
	Key   string `json:"key,omitempty"`
	Value string `json:"value,omitempty"`
}

// Response is what a handler answers.
type Response struct {
	Driver string   `json:"driver"`
	Key    string   `json:"key"`
	Value  string   `json:"value"`            // read back after writing
	Server string   `json:"server,omitempty"` // what the server says it is, when the protocol tells
	DB     int      `json:"db,omitempty"`     // Redis: the database number used
	Dialed []string `json:"dialed"`           // every address the driver connected to
}

// LocalError is a handler's refusal: the connection string, or a dial, still names the developer's machine.
type LocalError struct {
	Variable string // the variable holding it; "" for a dial
	Addr     string
}

func (e *LocalError) Error() string {
	where := "dial to " + e.Addr
	if e.Variable != "" {
		where = e.Variable + " names " + e.Addr
	}
	return where + ", an address on the developer's machine: a function in AWS cannot reach it (not patched to the tunnel?)"
}

// run is the part every handler shares: decode the payload, bound the time, record the dials.
func (c Cloud) run(ctx context.Context, payload []byte, driver string,
	do func(ctx context.Context, d *dialer, req Request) (Response, error)) ([]byte, error) {
	var req Request
	if len(payload) > 0 {
		if err := json.Unmarshal(payload, &req); err != nil {
			return nil, fmt.Errorf("payload: %w", err)
		}
	}
	if req.Key == "" {
		req.Key = "stptunnel"
	}
	if req.Value == "" {
		req.Value = "hello from the cloud"
	}
	timeout := c.Timeout
	if timeout == 0 {
		timeout = 20 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	d := &dialer{cloud: c}
	resp, err := do(ctx, d, req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", driver, err)
	}
	resp.Driver, resp.Key, resp.Dialed = driver, req.Key, d.addrs()
	return json.Marshal(resp)
}

// UnreachableError is a handler's refusal of a host name other than localhost: a deployed cloud database, say.
// The tests reach only this machine, and no DNS lookup is ever made for them.
type UnreachableError struct {
	Variable string
	Host     string
}

func (e *UnreachableError) Error() string {
	return e.Variable + " names " + e.Host + ", a host these tests do not reach (the deployed cloud database?): no lookup is made"
}

// checkValue refuses a connection string that names one of the developer's services, or a host name that would
// need a DNS lookup (the tests touch only loopback).
func (c Cloud) checkValue(variable, value string, defaultPort int) error {
	for _, m := range connstr.Find(value, defaultPort) {
		if c.isLocal(m.Addr.Host, m.Addr.Port) {
			return &LocalError{Variable: variable, Addr: m.Addr.String()}
		}
	}
	for _, text := range connstr.Addresses(connstr.Redact(value)) {
		host := text
		if h, _, err := net.SplitHostPort(text); err == nil {
			host = h
		}
		host = strings.Trim(host, "[]")
		if _, err := netip.ParseAddr(host); err != nil && !connstr.IsLocalHost(host) {
			return &UnreachableError{Variable: variable, Host: host}
		}
	}
	return nil
}

func (c Cloud) isLocal(host string, port int) bool {
	return connstr.IsLocalHost(host) && slices.Contains(c.LocalPorts, port)
}

// env returns a variable the handler needs, checked.
func (c Cloud) env(env map[string]string, variable string, defaultPort int) (string, error) {
	value, ok := env[variable]
	if !ok || value == "" {
		return "", fmt.Errorf("variable %s is not set", variable)
	}
	return value, c.checkValue(variable, value, defaultPort)
}

// dialer is every driver's dial function: it refuses the developer's machine and records what it reached.
type dialer struct {
	cloud Cloud
	mu    sync.Mutex
	seen  []string
}

func (d *dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, _ := strconv.Atoi(portText)
	if d.cloud.isLocal(host, port) {
		return nil, &LocalError{Addr: addr}
	}
	var nd net.Dialer
	conn, err := nd.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	// A host name that resolved to one of the developer's ports is refused too.
	if ta, ok := conn.RemoteAddr().(*net.TCPAddr); ok && ta.IP.IsLoopback() && slices.Contains(d.cloud.LocalPorts, ta.Port) {
		conn.Close()
		return nil, &LocalError{Addr: addr}
	}
	d.mu.Lock()
	if !slices.Contains(d.seen, addr) {
		d.seen = append(d.seen, addr)
	}
	d.mu.Unlock()
	return conn, nil
}

func (d *dialer) addrs() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.seen)
}

// Handler returns the handler for a resource type (connstr's TypePostgres, TypeMySQL, TypeRedis, TypeDynamoDB)
// reading its connection string from variable (for DynamoDB, the STP_<NAME>_ENDPOINT variable).
func (c Cloud) Handler(typ, variable string) (Handler, error) {
	switch typ {
	case connstr.TypePostgres:
		return c.Postgres(variable), nil
	case connstr.TypeMySQL:
		return c.MySQL(variable), nil
	case connstr.TypeRedis:
		return c.Redis(variable), nil
	case connstr.TypeDynamoDB:
		return c.DynamoDB(variable), nil
	}
	return nil, fmt.Errorf("no cloud-side handler for resource type %q", typ)
}

// Table is the table (DynamoDB: table, Redis: key prefix) every handler writes to.
const Table = "stptunnel_e2e"
