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

// Action says what a patch does to one bound variable (CONTRACT.md §4).
type Action string

const (
	// ActionInPlace: the value names the resource's local address; only the host and port of those entries
	// change, every other byte stays.
	ActionInPlace Action = "in-place"
	// ActionReplace: the variable is bound by name and its value names something else (the cloud database): it
	// becomes the tunnel's address in the variable's form — the declared URL with the tunnel's host and port,
	// the tunnel's host (_HOST), its port (_PORT) or http://HOST:PORT (a DynamoDB endpoint).
	ActionReplace Action = "replace"
	// ActionKeep: the variable is left as it is; Decision.Why says why.
	ActionKeep Action = "keep"
)

// Decision is what a patch does to one bound variable, and why.
type Decision struct {
	Binding doc.Binding
	Action  Action
	// After is the value to write (ActionInPlace, ActionReplace).
	After string
	// Was lists what the old value named (ActionReplace): its addresses, or the host or port it held. For
	// messages; never credentials.
	Was []string
	// Why says why a variable is kept (ActionKeep).
	Why string
}

// Describe says in a few words what the decision does, for messages: "rewrite in place", "replace
// db.example.com:5432 with the tunnel", "keep: ...". It never contains credentials.
func (d Decision) Describe() string {
	switch d.Action {
	case ActionInPlace:
		return "rewrite in place"
	case ActionReplace:
		if len(d.Was) == 0 {
			return "replace its value with the tunnel"
		}
		return "replace " + strings.Join(d.Was, ", ") + " with the tunnel"
	}
	return "leave it as it is: " + d.Why
}

// Decide applies the rules of CONTRACT.md §4 to one bound variable of a function whose variables are current. A
// variable bound by name (convention or --map) is the resource: it follows the tunnel whatever it held. A
// variable bound by value follows it only while it names the resource's local address. An error wraps
// *connstr.Unsupported when the tunnel cannot carry the value (or the declared URL).
func Decide(current map[string]string, b doc.Binding, t Target) (Decision, error) {
	d := Decision{Binding: b, Action: ActionKeep}
	value, ok := current[b.Env]
	if !ok {
		d.Why = b.Env + " is not set on the function"
		return d, nil
	}
	local, err := LocalAddress(t.Resource)
	if err != nil {
		return d, err
	}
	typ := t.Resource.Type
	defaultPort := connstr.DefaultPort(typ)
	prefix := "STP_" + connstr.SnakeName(t.Resource.Name) + "_"
	byName := b.Via != doc.ViaValue
	isEndpoint := typ == connstr.TypeDynamoDB && (b.Env == prefix+"ENDPOINT" || b.Env == EnvDynamoDBEndpoint)

	set := func(a Action, after string) (Decision, error) {
		d.Action, d.After = a, after
		if a == ActionReplace {
			d.Was = named(value)
		}
		return d, nil
	}
	switch {
	case byName && b.Env == prefix+"HOST":
		return set(hostAction(value), t.Public.Host)
	case byName && b.Env == prefix+"PORT":
		return set(portAction(value, local), strconv.Itoa(t.Public.Port))
	case isEndpoint && (byName || connstr.References(value, local, defaultPort)):
		a := ActionReplace
		if connstr.References(value, local, defaultPort) {
			a = ActionInPlace
		}
		return set(a, "http://"+t.Public.String())
	}
	if connstr.References(value, local, defaultPort) {
		out, _, err := connstr.Rewrite(value, local, t.Public, defaultPort)
		if err != nil {
			return d, err
		}
		return set(ActionInPlace, out)
	}
	if !byName {
		d.Why = fmt.Sprintf("%s no longer names %s", b.Env, local)
		return d, nil
	}
	// Bound by name, naming something else: the variable's form decides what the tunnel's address looks like.
	trimmed := strings.TrimSpace(value)
	switch {
	case isPort(trimmed):
		return set(ActionReplace, strconv.Itoa(t.Public.Port))
	case isHostName(trimmed):
		return set(ActionReplace, t.Public.Host)
	}
	out, err := DeclaredURL(t)
	if err != nil {
		return d, err
	}
	return set(ActionReplace, out)
}

// DeclaredURL is the resource as declared locally (its URL, or HOST:PORT) with its host and port set to the
// tunnel's public address; every other byte of the declared URL is kept, so the local database's own user,
// password and options travel with it. A DynamoDB resource gives http://HOST:PORT.
func DeclaredURL(t Target) (string, error) {
	local, err := LocalAddress(t.Resource)
	if err != nil {
		return "", err
	}
	switch {
	case t.Resource.Type == connstr.TypeDynamoDB:
		return "http://" + t.Public.String(), nil
	case t.Resource.URL == "":
		return t.Public.String(), nil
	}
	out, n, err := connstr.Rewrite(t.Resource.URL, local, t.Public, connstr.DefaultPort(t.Resource.Type))
	if err != nil {
		return "", fmt.Errorf("the declared URL of %s: %w", t.Resource.Name, err)
	}
	if n == 0 {
		return t.Public.String(), nil
	}
	return out, nil
}

// named lists what a value names, for a message: its addresses, or the value itself when it is a bare host or
// port (neither is a secret).
func named(value string) []string {
	out := connstr.Addresses(connstr.Redact(value)) // never a piece of a password
	if v := strings.TrimSpace(value); len(out) == 0 && (isPort(v) || isHostName(v)) {
		out = append(out, v)
	}
	return out
}

func hostAction(value string) Action {
	if connstr.IsLocalHost(strings.TrimSpace(value)) {
		return ActionInPlace
	}
	return ActionReplace
}

func portAction(value string, local connstr.HostPort) Action {
	if p, err := strconv.Atoi(strings.TrimSpace(value)); err == nil && p == local.Port {
		return ActionInPlace
	}
	return ActionReplace
}

// isPort: a value that is only a port number (a variable that holds the database's port).
func isPort(v string) bool {
	p, err := strconv.Atoi(v)
	return err == nil && p > 0 && p <= 65535 && v[0] != '+' && v[0] != '-'
}

// isHostName: a value that is only a host name or IP address (a variable that holds the database's host).
func isHostName(v string) bool {
	if v == "" || strings.ContainsAny(v, ":/@=; \t()") {
		return false
	}
	for _, c := range v {
		if !(c == '.' || c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return strings.Contains(v, ".") || connstr.IsLocalHost(v)
}

// Rewrite computes the patched variables for bindings (targets keyed by resource name). It returns the whole new
// map, the changes (sorted by env) and a decision per binding (in the order of bindings). A binding whose
// resource has no target is kept. current is not modified.
//
// Beyond each binding's own decision (Decide): a Stacktape _HOST/_PORT pair always moves together (the one of
// the pair the function lacks is added), and a DynamoDB resource's tunnel is also written to
// AWS_ENDPOINT_URL_DYNAMODB (added when absent), which the AWS SDKs read as the DynamoDB endpoint. A value the
// tunnel cannot carry is an error wrapping *connstr.Unsupported and naming the variable; nothing is returned to
// write then.
func Rewrite(current map[string]string, bindings []doc.Binding, targets map[string]Target) (map[string]string, []doc.Change, []Decision, error) {
	next := maps.Clone(current)
	if next == nil {
		next = map[string]string{}
	}
	decisions := make([]Decision, 0, len(bindings))
	dynamo := "" // the value AWS_ENDPOINT_URL_DYNAMODB must take, if any
	for _, b := range bindings {
		t, ok := targets[b.Resource]
		if !ok {
			decisions = append(decisions, Decision{Binding: b, Action: ActionKeep, Why: b.Resource + " has no tunnel"})
			continue
		}
		d, err := Decide(current, b, t)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("%s: %w", b.Env, err)
		}
		decisions = append(decisions, d)
		if d.Action == ActionKeep {
			continue
		}
		next[b.Env] = d.After
		prefix := "STP_" + connstr.SnakeName(t.Resource.Name) + "_"
		if b.Via == doc.ViaConvention {
			switch b.Env {
			case prefix + "HOST":
				setAbsent(current, next, prefix+"PORT", strconv.Itoa(t.Public.Port))
			case prefix + "PORT":
				setAbsent(current, next, prefix+"HOST", t.Public.Host)
			}
		}
		if t.Resource.Type == connstr.TypeDynamoDB && b.Env != EnvDynamoDBEndpoint {
			endpoint := "http://" + t.Public.String()
			if dynamo != "" && dynamo != endpoint {
				return nil, nil, nil, fmt.Errorf("%s: %w", b.Env, &connstr.Unsupported{Reason: "two DynamoDB resources are bound, and " +
					EnvDynamoDBEndpoint + " can point at only one of them"})
			}
			dynamo = endpoint
		}
	}
	if dynamo != "" {
		next[EnvDynamoDBEndpoint] = dynamo
	}
	return next, diff(current, next), decisions, nil
}

// setAbsent sets key in next when the function does not have it (the other half of a _HOST/_PORT pair).
func setAbsent(current, next map[string]string, key, value string) {
	if _, ok := current[key]; !ok {
		next[key] = value
	}
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
