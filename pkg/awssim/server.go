package awssim

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"time"
)

// Defaults used when Options leave a field empty.
const (
	DefaultRegion    = "us-east-1"
	DefaultAccountID = "123456789012"
)

// Options configure a Server.
type Options struct {
	// Region and AccountID appear in ARNs. A seed may override them.
	Region, AccountID string
	// UpdateDelay is how long a function stays LastUpdateStatus=InProgress
	// after UpdateFunctionConfiguration (or SetEnv) before it is Successful.
	// Zero still answers InProgress to the update itself, as AWS does, and
	// Successful to every later read.
	UpdateDelay time.Duration
	// Quotas are the Lambda request rates enforced; the zero value is
	// Lambda's defaults (15 control-plane requests per second, 100 GetFunction
	// requests per second), Quotas{Off: true} none.
	Quotas Quotas
	// Seed makes fault rates and generated identifiers reproducible.
	Seed int64
	// Logger receives one debug line per request; nil discards.
	Logger *slog.Logger
}

// Server is a running emulator. Its methods are safe for concurrent use.
type Server struct {
	log      *slog.Logger
	listener net.Listener
	http     *http.Server
	closed   chan struct{}
	closeErr sync.Once

	mu          sync.Mutex
	region      string
	account     string
	updateDelay time.Duration
	rng         *rand.Rand
	requestSeq  uint64
	functions   map[string]*function // by name
	handlers    map[string]Handler   // by function name
	stacks      map[string]Stack     // by stack name
	subnets     map[string]Subnet    // by subnet ID
	routeTables map[string]RouteTable
	vpcs        map[string]VPC             // by VPC ID
	groups      map[string]SecurityGroup   // by group ID
	faults      map[string]Fault           // by operation name, "*" for all
	calls       map[string]int             // by operation name
	operations  map[string]map[string]bool // by operation name: the SDK invocation IDs of the admitted calls
	anonymous   map[string]int             // by operation name: admitted calls without an invocation ID
	throttled   map[string]int             // by operation name: refused by the quotas
	quotas      Quotas
	buckets     map[int]*bucket // by quotaControlPlane, quotaGetFunction; nil when Off
	clock       func() time.Time
	updates     map[string]int // by function name
}

// New starts an emulator listening on a random loopback port.
func New(opts Options) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("awssim: listening on loopback: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Server{
		log:         log,
		listener:    ln,
		closed:      make(chan struct{}),
		region:      orDefault(opts.Region, DefaultRegion),
		account:     orDefault(opts.AccountID, DefaultAccountID),
		updateDelay: opts.UpdateDelay,
		rng:         rand.New(rand.NewPCG(uint64(opts.Seed), 0x5eed)),
		functions:   map[string]*function{},
		handlers:    map[string]Handler{},
		stacks:      map[string]Stack{},
		subnets:     map[string]Subnet{},
		routeTables: map[string]RouteTable{},
		vpcs:        map[string]VPC{},
		groups:      map[string]SecurityGroup{},
		faults:      map[string]Fault{},
		calls:       map[string]int{},
		operations:  map[string]map[string]bool{},
		anonymous:   map[string]int{},
		throttled:   map[string]int{},
		updates:     map[string]int{},
		clock:       time.Now,
	}
	s.setQuotas(opts.Quotas)
	s.http = &http.Server{Handler: s.routes(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("awssim: serving", "err", err)
		}
	}()
	return s, nil
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// URL is the endpoint to give the SDK (BaseEndpoint or AWS_ENDPOINT_URL).
func (s *Server) URL() string { return "http://" + s.listener.Addr().String() }

// Close stops the server and cuts any request still waiting on injected latency.
func (s *Server) Close() {
	s.closeErr.Do(func() {
		close(s.closed)
		_ = s.http.Close()
	})
}

// Region is the region ARNs are built with.
func (s *Server) Region() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.region
}

// AccountID is the account ARNs are built with.
func (s *Server) AccountID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.account
}

// SetUpdateDelay changes how long later updates stay InProgress.
func (s *Server) SetUpdateDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.updateDelay = d
}

// Calls is how many requests reached operation op, including those answered
// by an injected fault and those the SDK retried, but not those the quotas
// refused (see Throttled).
func (s *Server) Calls(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

// Operations is how many SDK operations reached op: admitted calls counted once per amz-sdk-invocation-id, the
// header the SDK keeps across the attempts of one operation (a call without it counts alone). Unlike Calls, it
// leaves out the SDK's retries — those of an injected fault, and those of a client-side race the SDK retries by
// itself (its HTTP transport may drop a connection while reading a response when the server answered before the
// request body's end was read: rare, but frequent enough under -race to make exact call counts flaky).
func (s *Server) Operations(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.operations[op]) + s.anonymous[op]
}

// countOperation records an admitted call of op under s.mu.
func (s *Server) countOperation(op, invocation string) {
	if invocation == "" {
		s.anonymous[op]++
		return
	}
	if s.operations[op] == nil {
		s.operations[op] = map[string]bool{}
	}
	s.operations[op][invocation] = true
}

// Updates is how many UpdateFunctionConfiguration requests changed function
// name (by name or ARN). Rejected requests and SetEnv do not count.
func (s *Server) Updates(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.updates[functionNameOf(name)]
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2015-03-31/functions", s.listFunctions)
	mux.HandleFunc("GET /2015-03-31/functions/", s.listFunctions)
	mux.HandleFunc("GET /2015-03-31/functions/{name}", s.getFunction)
	mux.HandleFunc("GET /2015-03-31/functions/{name}/configuration", s.getFunctionConfiguration)
	mux.HandleFunc("PUT /2015-03-31/functions/{name}/configuration", s.updateFunctionConfiguration)
	mux.HandleFunc("POST /2015-03-31/functions/{name}/invocations", s.invokeHTTP)
	mux.HandleFunc("POST /{$}", s.query)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeLambdaError(w, apiError{status: http.StatusNotFound, code: "UnknownOperationException",
			message: fmt.Sprintf("no operation at %s %s", r.Method, r.URL.Path)})
	})
	return mux
}

// begin admits a call of op under the quotas, counts it and applies its
// latency and fault. It reports whether the handler should go on; when not,
// the response has been written (or the connection dropped). A call over the
// quota is answered 429 after the latency, and no fault is drawn for it.
func (s *Server) begin(w http.ResponseWriter, r *http.Request, op string, proto protocol) bool {
	s.mu.Lock()
	quotaErr, admitted := s.admit(op, proto)
	var (
		fault Fault
		fail  bool
	)
	if admitted {
		s.calls[op]++
		s.countOperation(op, r.Header.Get("Amz-Sdk-Invocation-Id"))
		fault, fail = s.drawFault(op)
	} else {
		fault = s.faults[s.faultKey(op)] // its latency still applies
	}
	s.mu.Unlock()
	if admitted {
		s.log.Debug("awssim: call", "op", op, "method", r.Method, "path", r.URL.Path, "fault", fault.Kind, "failing", fail)
	} else {
		s.log.Debug("awssim: throttled", "op", op, "method", r.Method, "path", r.URL.Path, "retryAfter", quotaErr.retryAfter)
	}

	if fault.Latency > 0 {
		t := time.NewTimer(fault.Latency)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return false
		case <-s.closed:
			return false
		}
	}
	switch {
	case !admitted:
		proto.writeError(w, quotaErr)
		return false
	case !fail:
		return true
	case fault.Kind == FaultDrop:
		dropConnection(w)
		return false
	}
	proto.writeError(w, faultError(proto, fault, s.faultResource(r)))
	return false
}

// drawFault decides under s.mu whether this call of op fails.
func (s *Server) drawFault(op string) (Fault, bool) {
	key := s.faultKey(op)
	f := s.faults[key]
	if f.Kind == FaultNone {
		return f, false
	}
	if f.Next > 0 {
		f.Next--
		s.faults[key] = f
		return f, true
	}
	return f, f.Rate > 0 && s.rng.Float64() < f.Rate
}

// faultKey is the key of the fault that applies to op: its own, else "*".
// Callers hold s.mu.
func (s *Server) faultKey(op string) string {
	if _, own := s.faults[op]; own {
		return op
	}
	return "*"
}

// faultResource names the function a Lambda request is about, for the
// conflict message.
func (s *Server) faultResource(r *http.Request) string {
	name := r.PathValue("name")
	if name == "" {
		return ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.functionARN(functionNameOf(name))
}

func dropConnection(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tcp, ok := conn.(*net.TCPConn); ok {
		// An RST rather than a FIN: the client sees "connection reset", the
		// way a dying load balancer looks.
		_ = tcp.SetLinger(0)
	}
	_ = conn.Close()
}

// newID returns a UUID-shaped identifier from the seeded RNG. Callers hold s.mu.
func (s *Server) newID() string {
	hi, lo := s.rng.Uint64(), s.rng.Uint64()
	hi = hi&^(0xf<<12) | 0x4<<12         // version 4
	lo = lo&^(0x3<<62) | uint64(0x2)<<62 // RFC 4122 variant
	return fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", hi>>32, (hi>>16)&0xffff, hi&0xffff, lo>>48, lo&0xffffffffffff)
}

func (s *Server) requestID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.newID()
}
