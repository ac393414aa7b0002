package doc

// Resource is a local resource to expose: CONTRACT.md §2 "resources".
type Resource struct {
	Name    string `json:"name"`
	Type    string `json:"type"`              // postgres | mysql | redis | dynamodb | tcp
	URL     string `json:"url,omitempty"`     // as the user wrote it; may hold a password
	Address string `json:"address,omitempty"` // host:port on this machine
}

// Binding ties one environment variable of a function to a resource.
type Binding struct {
	Env      string `json:"env"`
	Resource string `json:"resource"`
	Via      string `json:"via"` // convention | map | value
	// Action is what env patch will do to it, as detect predicts: in-place (the value names the local address:
	// only its host and port change) or replace (bound by name, it names something else: it becomes the
	// tunnel's address).
	Action string `json:"action,omitempty"`
}

// Binding kinds.
const (
	ViaConvention = "convention"
	ViaMap        = "map"
	ViaValue      = "value"
)

// Function is a deployed function that references at least one local resource.
type Function struct {
	Name     string    `json:"name"`
	ARN      string    `json:"arn,omitempty"`
	Bindings []Binding `json:"bindings"`
}

// Skip records a function that will not be patched and why.
type Skip struct {
	Function string `json:"function"`
	Reason   string `json:"reason"` // one of the Reason* constants
	Message  string `json:"message,omitempty"`
}

// Reasons a function is skipped (CONTRACT.md §2).
const (
	ReasonVPCNoNAT    = "vpc-no-nat"
	ReasonNotFound    = "not-found"
	ReasonNoAccess    = "no-access"
	ReasonTooLarge    = "too-large"
	ReasonReservedKey = "reserved-key"
	// ReasonInUse: another session holds the function (its marker, STPTUNNEL_SESSION, carries another id).
	ReasonInUse = "in-use"
)

// Session is the session that patches: "session", added by the first step that patches. Its id is the one the
// functions' markers (STPTUNNEL_SESSION) and the journal carry.
type Session struct {
	ID      string `json:"id"`
	By      string `json:"by"`      // user@host
	Started string `json:"started"` // RFC 3339
}

// Tunnel is an open tunnel from a public address to a local resource.
type Tunnel struct {
	Resource string `json:"resource"`
	Local    string `json:"local"`
	Public   string `json:"public"`
	Server   string `json:"server"`
	Engine   string `json:"engine"` // native | bore
	// Activity is what the tunnel carried so far (tunnel status; the native engine only).
	Activity *Activity `json:"activity,omitempty"`
}

// Activity is what a tunnel carried: connections open now and in all, bytes each way, when the latest
// connection came, and the visitors the local service refused.
type Activity struct {
	Open           int64  `json:"open"`
	Total          int64  `json:"total"`
	BytesIn        int64  `json:"bytesIn"`        // from the functions to the local service
	BytesOut       int64  `json:"bytesOut"`       // from the local service to the functions
	Last           string `json:"last,omitempty"` // RFC 3339, when the latest connection was opened
	LocalErrors    int64  `json:"localErrors"`
	LastLocalError string `json:"lastLocalError,omitempty"`
}

// Change is one environment variable changed by a patch.
type Change struct {
	Env     string `json:"env"`
	Existed bool   `json:"existed"`
	Before  string `json:"before"`
	After   string `json:"after"`
}

// Patch is what was (or would be) written to one function.
type Patch struct {
	Function string   `json:"function"`
	ARN      string   `json:"arn,omitempty"`
	State    string   `json:"state"` // pending | applied | restored
	Revision string   `json:"revision,omitempty"`
	Changes  []Change `json:"changes"`
}

// Patch states.
const (
	PatchPending  = "pending"
	PatchApplied  = "applied"
	PatchRestored = "restored"
	PatchDryRun   = "dry-run"
)

// Kept is a key that restore did not put back.
type Kept struct {
	Env    string `json:"env"`
	Reason string `json:"reason"` // changed-since-patch
}

// Restore is the outcome of restoring one function.
type Restore struct {
	Function string `json:"function"`
	State    string `json:"state"` // restored | partial | not-needed | gone | failed
	Kept     []Kept `json:"kept,omitempty"`
	Message  string `json:"message,omitempty"`
}

// Restore states.
const (
	RestoreRestored  = "restored"
	RestorePartial   = "partial"
	RestoreNotNeeded = "not-needed"
	RestoreGone      = "gone"
	RestoreFailed    = "failed"
)

// Marked is a function that carries a session marker, as env status lists it: who holds it and since when, the
// keys the session changed (names only) and whether its tunnels answer.
type Marked struct {
	Function string   `json:"function"`
	ARN      string   `json:"arn,omitempty"`
	Session  string   `json:"session"`
	By       string   `json:"by"`
	Since    string   `json:"since"`
	Keys     []string `json:"keys"`
	Tunnels  []Probe  `json:"tunnels"`
	// Alive: at least one of the session's tunnels answers (a TCP connection to its public address is accepted).
	Alive bool `json:"alive"`
	// Message says why the marker cannot be read, when it cannot (the other fields are then empty).
	Message string `json:"message,omitempty"`
}

// Probe is one public tunnel address and whether it answered.
type Probe struct {
	Public string `json:"public"`
	Alive  bool   `json:"alive"`
}
