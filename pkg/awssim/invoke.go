package awssim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Handler is the code of a function: it runs with the environment an
// invocation sees and returns the response payload.
type Handler func(ctx context.Context, env map[string]string, payload []byte) ([]byte, error)

// Errors returned by Invoke when it cannot run the handler.
var (
	ErrFunctionNotFound = errors.New("function not found")
	ErrNoHandler        = errors.New("no handler registered")
	ErrKMSAccessDenied  = errors.New("KMS access denied: the environment cannot be decrypted")
)

// RegisterHandler sets the Go code run when function name is invoked. It
// takes precedence over the function's built-in Invoke and survives
// DeleteFunction and PutFunction.
func (s *Server) RegisterHandler(name string, h Handler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.handlers[functionNameOf(name)] = h
}

// Invoke runs function name's handler with the environment an invocation
// would see now: the variables of the last completed update (an update still
// InProgress is not yet live, as in AWS), plus the variables the Lambda
// runtime sets (AWS_REGION, AWS_LAMBDA_FUNCTION_NAME, ...).
func (s *Server) Invoke(ctx context.Context, name string, payload []byte) ([]byte, error) {
	h, env, err := s.prepareInvoke(name)
	if err != nil {
		return nil, err
	}
	out, err := h(ctx, env, payload)
	if err != nil {
		return out, fmt.Errorf("invoking %s: %w", functionNameOf(name), err)
	}
	return out, nil
}

func (s *Server) prepareInvoke(ref string) (Handler, map[string]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	name := functionNameOf(ref)
	fn, ok := s.functions[name]
	if !ok {
		return nil, nil, fmt.Errorf("invoking %s: %w", name, ErrFunctionNotFound)
	}
	if fn.spec.KMSError != "" {
		return nil, nil, fmt.Errorf("invoking %s: %w", name, ErrKMSAccessDenied)
	}
	s.settle(fn)
	h := s.handlers[name]
	if h == nil && fn.spec.Invoke != "" {
		h, _ = BuiltinHandler(fn.spec.Invoke)
	}
	if h == nil {
		return nil, nil, fmt.Errorf("invoking %s: %w", name, ErrNoHandler)
	}
	env := maps.Clone(fn.activeEnv)
	if env == nil {
		env = map[string]string{}
	}
	maps.Copy(env, map[string]string{
		"AWS_REGION":                      s.region,
		"AWS_DEFAULT_REGION":              s.region,
		"AWS_LAMBDA_FUNCTION_NAME":        name,
		"AWS_LAMBDA_FUNCTION_VERSION":     "$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": strconv.Itoa(int(fn.spec.MemorySize)),
		"AWS_EXECUTION_ENV":               "AWS_Lambda_" + fn.spec.Runtime,
		"_HANDLER":                        fn.spec.Handler,
	})
	return h, env, nil
}

// invokeHTTP is Lambda Invoke over the wire: a handler error is a 200 with
// X-Amz-Function-Error, as AWS reports an exception thrown by the code.
func (s *Server) invokeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.begin(w, r, "Invoke", protoLambda) {
		return
	}
	payload, err := io.ReadAll(r.Body)
	if err != nil {
		writeLambdaError(w, apiError{status: 400, code: "InvalidRequestContentException", message: err.Error()})
		return
	}
	s.mu.Lock()
	_, aerr := s.lookupFunction(r.PathValue("name"), r.URL.Query().Get("Qualifier"))
	s.mu.Unlock()
	if aerr != nil {
		writeLambdaError(w, *aerr)
		return
	}
	h, env, err := s.prepareInvoke(r.PathValue("name"))
	if errors.Is(err, ErrKMSAccessDenied) {
		writeLambdaError(w, apiError{status: 502, code: "KMSAccessDeniedException", message: kmsMessage("AccessDeniedException")})
		return
	}

	w.Header().Set("X-Amz-Executed-Version", "$LATEST")
	switch r.Header.Get("X-Amz-Invocation-Type") {
	case "DryRun":
		w.WriteHeader(http.StatusNoContent)
		return
	case "Event":
		if err == nil {
			// The caller does not wait; the handler runs detached from its request.
			go func() { _, _ = h(context.WithoutCancel(r.Context()), env, payload) }()
		}
		w.WriteHeader(http.StatusAccepted)
		return
	}
	var out []byte
	if err == nil {
		out, err = h(r.Context(), env, payload)
	}
	if err != nil {
		w.Header().Set("X-Amz-Function-Error", "Unhandled")
		writeJSON(w, http.StatusOK, map[string]string{"errorType": "Error", "errorMessage": err.Error()})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}

// BuiltinHandler returns a ready-made handler by the name a seed's "invoke"
// field uses:
//
//   - "env": returns the function's own variables (runtime-set ones left out)
//     as compact JSON with sorted keys.
//   - "echo": returns the payload.
//   - "dial:VAR": connects to the host:port in variable VAR (a URL such as
//     postgres://u:p@host:port/db, or a bare host:port), writes the payload,
//     half-closes, and returns all it reads back: a function reaching a
//     database through the tunnel, end to end. "dial:HOSTVAR+PORTVAR" takes
//     the host and the port from two variables (Stacktape's _HOST and _PORT).
//     Only IP addresses and localhost are dialled: a name such as a cloud
//     database's is refused without a DNS lookup (the emulator's functions
//     reach only this machine).
func BuiltinHandler(name string) (Handler, bool) {
	switch {
	case name == "env":
		return envHandler, true
	case name == "echo":
		return func(_ context.Context, _ map[string]string, payload []byte) ([]byte, error) { return payload, nil }, true
	case strings.HasPrefix(name, "dial:"):
		return dialHandler(strings.TrimPrefix(name, "dial:")), true
	}
	return nil, false
}

func envHandler(_ context.Context, env map[string]string, _ []byte) ([]byte, error) {
	own := map[string]string{}
	for k, v := range env {
		if !reservedEnvKeys[k] {
			own[k] = v
		}
	}
	return CompactJSON(own), nil
}

// CompactJSON encodes env as compact JSON with sorted keys and no HTML
// escaping, the form the awssim-env script command prints.
func CompactJSON(env map[string]string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(env) // a map of strings always encodes
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

func dialHandler(variable string) Handler {
	return func(ctx context.Context, env map[string]string, payload []byte) ([]byte, error) {
		addr, err := dialAddress(env, variable)
		if err != nil {
			return nil, err
		}
		if host, _, _ := net.SplitHostPort(addr); host != "localhost" {
			if _, err := netip.ParseAddr(host); err != nil {
				return nil, fmt.Errorf("variable %s names %s: not an address this emulator reaches (no DNS lookup is made)", variable, host)
			}
		}
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("dialing %s from %s: %w", addr, variable, err)
		}
		defer conn.Close()
		if deadline, ok := ctx.Deadline(); ok {
			_ = conn.SetDeadline(deadline)
		}
		if _, err := conn.Write(payload); err != nil {
			return nil, fmt.Errorf("writing to %s: %w", addr, err)
		}
		if tcp, ok := conn.(*net.TCPConn); ok {
			_ = tcp.CloseWrite()
		}
		out, err := io.ReadAll(conn)
		if err != nil {
			return out, fmt.Errorf("reading from %s: %w", addr, err)
		}
		return out, nil
	}
}

// dialAddress is the host:port a dial handler connects to: from one variable (a URL or a bare host:port), or
// from a HOSTVAR+PORTVAR pair.
func dialAddress(env map[string]string, variable string) (string, error) {
	get := func(name string) (string, error) {
		v, ok := env[name]
		if !ok {
			return "", fmt.Errorf("variable %s is not set", name)
		}
		return v, nil
	}
	if hostVar, portVar, ok := strings.Cut(variable, "+"); ok {
		host, err := get(hostVar)
		if err != nil {
			return "", err
		}
		port, err := get(portVar)
		if err != nil {
			return "", err
		}
		return net.JoinHostPort(host, port), nil
	}
	value, err := get(variable)
	if err != nil {
		return "", err
	}
	addr := value
	if u, err := url.Parse(value); err == nil && u.Host != "" {
		addr = u.Host
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return "", fmt.Errorf("variable %s: no host:port in %q", variable, value)
	}
	return addr, nil
}
