package lambdaenv

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/stptunnel/stptunnel/pkg/connstr"
	"github.com/stptunnel/stptunnel/pkg/doc"
)

// EnvDynamoDBEndpoint is the variable the AWS SDKs read as the DynamoDB endpoint. A patch that points a DynamoDB
// resource at a tunnel sets it (adding it when absent; restore then removes it).
const EnvDynamoDBEndpoint = "AWS_ENDPOINT_URL_DYNAMODB"

// MaxEnvSize is Lambda's limit on the compact JSON encoding of a function's variables.
const MaxEnvSize = 4096

// Target is where a resource is reachable now: the resource as declared locally and the public address of its
// tunnel.
type Target struct {
	Resource doc.Resource
	Public   connstr.HostPort
}

// Rewrite computes the patched variables for bindings (targets keyed by resource name). It returns the whole new
// map and the changes (sorted by env). A binding whose resource has no target is left alone, and so is a binding
// whose variable is absent or holds no local address of its resource. current is not modified.
//
// Per DESIGN.md §5: in a connection string only the host and port of the entries at the resource's local address
// change (connstr.Rewrite); STP_<NAME>_HOST (a local host) becomes the public host and STP_<NAME>_PORT (the local
// port) the public port; a DynamoDB resource's variable becomes http://HOST:PORT and AWS_ENDPOINT_URL_DYNAMODB is
// set to the same. A value the tunnel cannot carry is an error wrapping *connstr.Unsupported and naming the
// variable; nothing is returned to write then.
func Rewrite(current map[string]string, bindings []doc.Binding, targets map[string]Target) (map[string]string, []doc.Change, error) {
	next := maps.Clone(current)
	if next == nil {
		next = map[string]string{}
	}
	dynamo := "" // the value AWS_ENDPOINT_URL_DYNAMODB must take, if any
	for _, b := range bindings {
		t, ok := targets[b.Resource]
		if !ok {
			continue
		}
		value, ok := current[b.Env]
		if !ok {
			continue
		}
		local, err := LocalAddress(t.Resource)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", b.Env, err)
		}
		out, changed, err := rewriteValue(b.Env, value, t, local)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", b.Env, err)
		}
		if !changed {
			continue
		}
		next[b.Env] = out
		if t.Resource.Type == connstr.TypeDynamoDB && b.Env != EnvDynamoDBEndpoint {
			endpoint := "http://" + t.Public.String()
			if dynamo != "" && dynamo != endpoint {
				return nil, nil, fmt.Errorf("%s: %w", b.Env, &connstr.Unsupported{Reason: "two DynamoDB resources are bound, and " +
					EnvDynamoDBEndpoint + " can point at only one of them"})
			}
			dynamo = endpoint
		}
	}
	if dynamo != "" {
		next[EnvDynamoDBEndpoint] = dynamo
	}
	return next, diff(current, next), nil
}

// rewriteValue applies the rule of DESIGN.md §5 that fits the variable env of a binding to t.
func rewriteValue(env, value string, t Target, local connstr.HostPort) (string, bool, error) {
	prefix := "STP_" + connstr.SnakeName(t.Resource.Name) + "_"
	typ := t.Resource.Type
	switch {
	case env == prefix+"HOST":
		if connstr.IsLocalHost(strings.TrimSpace(value)) {
			return t.Public.Host, t.Public.Host != value, nil
		}
		return value, false, nil
	case env == prefix+"PORT":
		if p, err := strconv.Atoi(strings.TrimSpace(value)); err == nil && p == local.Port {
			out := strconv.Itoa(t.Public.Port)
			return out, out != value, nil
		}
		return value, false, nil
	case typ == connstr.TypeDynamoDB && (env == prefix+"ENDPOINT" || env == EnvDynamoDBEndpoint):
		if !connstr.References(value, local, connstr.DefaultPort(typ)) {
			return value, false, nil
		}
		out := "http://" + t.Public.String()
		return out, out != value, nil
	}
	out, n, err := connstr.Rewrite(value, local, t.Public, connstr.DefaultPort(typ))
	if err != nil {
		return value, false, err
	}
	return out, n > 0 && out != value, nil
}

// LocalAddress is where a resource listens on this machine: its "address", or the address in its URL.
func LocalAddress(r doc.Resource) (connstr.HostPort, error) {
	if r.Address != "" {
		hp, err := connstr.ParseHostPort(r.Address)
		if err != nil {
			return connstr.HostPort{}, fmt.Errorf("resource %s: %w", r.Name, err)
		}
		return hp, nil
	}
	l, err := connstr.NewLocal(r.Name, r.Type, r.URL)
	if err != nil {
		return connstr.HostPort{}, err
	}
	return l.Address, nil
}

// diff lists the keys of after that are new or hold another value than in before, sorted by name.
func diff(before, after map[string]string) []doc.Change {
	var changes []doc.Change
	for _, k := range slices.Sorted(maps.Keys(after)) {
		old, existed := before[k]
		if existed && old == after[k] {
			continue
		}
		changes = append(changes, doc.Change{Env: k, Existed: existed, Before: old, After: after[k]})
	}
	return changes
}

// LimitError says why Lambda would refuse a variables map: doc.ReasonTooLarge (Size is the measured size) or
// doc.ReasonReservedKey (Key is the first reserved key).
type LimitError struct {
	Reason string
	Key    string
	Size   int
}

func (e *LimitError) Error() string {
	if e.Reason == doc.ReasonReservedKey {
		return fmt.Sprintf("variable %s is reserved by Lambda and cannot be written", e.Key)
	}
	return fmt.Sprintf("the variables would take %d bytes, over Lambda's %d-byte limit", e.Size, MaxEnvSize)
}

// CheckLimits returns a *LimitError when Lambda would refuse env: a reserved key (checked first, as Lambda does),
// or a compact JSON encoding over 4096 bytes.
func CheckLimits(env map[string]string) error {
	for _, k := range slices.Sorted(maps.Keys(env)) {
		if IsReserved(k) {
			return &LimitError{Reason: doc.ReasonReservedKey, Key: k}
		}
	}
	if size := EnvSize(env); size > MaxEnvSize {
		return &LimitError{Reason: doc.ReasonTooLarge, Size: size}
	}
	return nil
}

// EnvSize is the size Lambda measures against its limit: the bytes of the map's compact JSON encoding, without
// HTML escaping.
func EnvSize(env map[string]string) int {
	if env == nil {
		env = map[string]string{}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(env) // a map of strings always encodes
	return len(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
}

// reserved are the variables the Lambda runtime sets and the API refuses to configure (AWS Lambda developer guide,
// "Defined runtime environment variables"). Other AWS_LAMBDA_* names, such as AWS_LAMBDA_EXEC_WRAPPER, are allowed.
var reserved = map[string]bool{
	"_HANDLER": true, "_X_AMZN_TRACE_ID": true, "AWS_REGION": true, "AWS_DEFAULT_REGION": true,
	"AWS_EXECUTION_ENV": true, "AWS_LAMBDA_FUNCTION_NAME": true, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": true,
	"AWS_LAMBDA_FUNCTION_VERSION": true, "AWS_LAMBDA_INITIALIZATION_TYPE": true, "AWS_LAMBDA_LOG_GROUP_NAME": true,
	"AWS_LAMBDA_LOG_STREAM_NAME": true, "AWS_LAMBDA_RUNTIME_API": true, "AWS_ACCESS_KEY": true,
	"AWS_ACCESS_KEY_ID": true, "AWS_SECRET_ACCESS_KEY": true, "AWS_SESSION_TOKEN": true,
	"LAMBDA_TASK_ROOT": true, "LAMBDA_RUNTIME_DIR": true,
}

// IsReserved reports whether Lambda refuses key as a configured variable.
func IsReserved(key string) bool { return reserved[key] }
