package awssim

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Function is a Lambda function as a test or seed describes it.
type Function struct {
	Name    string            `json:"name"`
	Runtime string            `json:"runtime,omitempty"`
	Handler string            `json:"handler,omitempty"`
	Env     map[string]string `json:"env,omitempty"`
	VPC     *VPCConfig        `json:"vpc,omitempty"`
	// KMSError, when set, is the ErrorCode (e.g. "AccessDeniedException") of
	// the Environment.Error every read returns instead of Variables: the
	// caller cannot decrypt the function's variables.
	KMSError    string `json:"kmsError,omitempty"`
	Description string `json:"description,omitempty"`
	MemorySize  int32  `json:"memorySize,omitempty"`
	Timeout     int32  `json:"timeout,omitempty"`
	// Invoke names a built-in handler (see BuiltinHandler) run when no Go
	// handler is registered for the function.
	Invoke string `json:"invoke,omitempty"`
}

// VPCConfig places a function in subnets. VpcID is derived from the first
// known subnet when empty.
type VPCConfig struct {
	SubnetIDs        []string `json:"subnetIds"`
	SecurityGroupIDs []string `json:"securityGroupIds,omitempty"`
	VpcID            string   `json:"vpcId,omitempty"`
}

// function is the emulator's state of one function. Guarded by Server.mu.
type function struct {
	spec         Function          // Env is the configured map (what reads return)
	activeEnv    map[string]string // what invocations see: lags spec.Env while an update is in progress
	revision     string
	lastModified time.Time
	updating     bool
	updateDone   time.Time
}

// PutFunction creates or replaces a function, Successful, with a new RevisionId.
func (s *Server) PutFunction(f Function) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f.Env = maps.Clone(f.Env)
	if f.VPC != nil {
		vpc := *f.VPC
		vpc.SubnetIDs = slices.Clone(vpc.SubnetIDs)
		vpc.SecurityGroupIDs = slices.Clone(vpc.SecurityGroupIDs)
		f.VPC = &vpc
	}
	if f.Runtime == "" {
		f.Runtime = "nodejs20.x"
	}
	if f.Handler == "" {
		f.Handler = "index.handler"
	}
	if f.MemorySize == 0 {
		f.MemorySize = 128
	}
	if f.Timeout == 0 {
		f.Timeout = 3
	}
	s.functions[f.Name] = &function{spec: f, activeEnv: maps.Clone(f.Env), revision: s.newID(), lastModified: time.Now()}
}

// DeleteFunction removes a function; later calls about it get ResourceNotFoundException.
func (s *Server) DeleteFunction(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.functions, functionNameOf(name))
}

// Env returns a copy of a function's configured variables (what GetFunction
// would return, KMS errors aside).
func (s *Server) Env(name string) (map[string]string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn, ok := s.functions[functionNameOf(name)]
	if !ok {
		return nil, false
	}
	env := maps.Clone(fn.spec.Env)
	if env == nil {
		env = map[string]string{}
	}
	return env, true
}

// SetEnv replaces a function's variables out of band, as a deploy would: a
// new RevisionId and an update InProgress for the update delay. It skips the
// API's validation and does not count in Updates. A missing function is ignored.
func (s *Server) SetEnv(name string, env map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn, ok := s.functions[functionNameOf(name)]
	if !ok {
		return
	}
	s.startUpdate(fn, maps.Clone(env))
}

// Revision returns a function's current RevisionId.
func (s *Server) Revision(name string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn, ok := s.functions[functionNameOf(name)]
	if !ok {
		return "", false
	}
	s.settle(fn)
	return fn.revision, true
}

// startUpdate applies env and starts the InProgress period. Callers hold s.mu.
func (s *Server) startUpdate(fn *function, env map[string]string) {
	s.settle(fn)
	fn.spec.Env = env
	fn.revision = s.newID()
	fn.lastModified = time.Now()
	fn.updating = true
	fn.updateDone = fn.lastModified.Add(s.updateDelay)
}

// settle finishes an update whose delay has passed. The RevisionId changes
// again then, as it does in AWS when LastUpdateStatus moves to Successful.
// Callers hold s.mu.
func (s *Server) settle(fn *function) {
	if !fn.updating || time.Now().Before(fn.updateDone) {
		return
	}
	fn.updating = false
	fn.activeEnv = maps.Clone(fn.spec.Env)
	fn.revision = s.newID()
}

// functionNameOf reduces a function name, a partial ARN (ACCOUNT:function:NAME)
// or a full ARN, any of them with a ":QUALIFIER", to the bare name.
func functionNameOf(ref string) string {
	name, _, _ := parseFunctionRef(ref)
	return name
}

var (
	functionRefPattern = regexp.MustCompile(`^(?:arn:aws[a-zA-Z-]*:lambda:([a-z0-9-]+):(\d{12}):function:|(\d{12}):function:|function:)?([a-zA-Z0-9_.-]+)(?::(\$LATEST|[a-zA-Z0-9_-]+))?$`)
	envKeyPattern      = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_]+$`)
)

// parseFunctionRef splits a function reference. ok is false when it matches
// none of the forms Lambda accepts.
func parseFunctionRef(ref string) (name, qualifier string, ok bool) {
	m := functionRefPattern.FindStringSubmatch(ref)
	if m == nil || len(m[4]) > 64 {
		return ref, "", false
	}
	return m[4], m[5], true
}

// lookupFunction resolves a path label (and optional Qualifier) to a function,
// with Lambda's errors. Callers hold s.mu.
func (s *Server) lookupFunction(ref, qualifier string) (*function, *apiError) {
	m := functionRefPattern.FindStringSubmatch(ref)
	if m == nil || len(m[4]) > 64 {
		return nil, &apiError{status: 400, code: "ValidationException", message: fmt.Sprintf(
			"1 validation error detected: Value '%s' at 'functionName' failed to satisfy constraint: Member must satisfy regular expression pattern: (arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\\d{1}:)?(\\d{12}:)?(function:)?([a-zA-Z0-9-_\\.]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?", ref)}
	}
	region, account, name := m[1], m[2]+m[3], m[4]
	if m[5] != "" {
		if qualifier != "" && qualifier != m[5] {
			return nil, &apiError{status: 400, code: "InvalidParameterValueException",
				message: "The derived qualifier from the function name does not match the specified qualifier."}
		}
		qualifier = m[5]
	}
	fn, found := s.functions[name]
	if !found || (region != "" && region != s.region) || (account != "" && account != s.account) ||
		(qualifier != "" && qualifier != "$LATEST") {
		arn := s.functionARN(name)
		if qualifier != "" {
			arn += ":" + qualifier
		}
		return nil, &apiError{status: 404, code: "ResourceNotFoundException", message: "Function not found: " + arn}
	}
	s.settle(fn)
	return fn, nil
}

func (s *Server) functionARN(name string) string {
	return fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", s.region, s.account, name)
}

// Wire shapes of the Lambda restJson1 protocol. Member names are the
// shapes' own (PascalCase), so untagged fields serialise as AWS sends them.
type (
	functionConfigurationJSON struct {
		FunctionName     string
		FunctionArn      string
		Runtime          string
		Role             string
		Handler          string
		CodeSize         int64
		Description      string
		Timeout          int32
		MemorySize       int32
		LastModified     string
		CodeSha256       string
		Version          string
		VpcConfig        *vpcConfigJSON   `json:",omitempty"`
		Environment      *environmentJSON `json:",omitempty"`
		TracingConfig    struct{ Mode string }
		RevisionId       string
		State            string `json:",omitempty"`
		LastUpdateStatus string `json:",omitempty"`
		PackageType      string
		Architectures    []string
		EphemeralStorage struct{ Size int32 }
		LoggingConfig    struct{ LogFormat, LogGroup string }
	}
	vpcConfigJSON struct {
		SubnetIds        []string
		SecurityGroupIds []string
		VpcId            string
	}
	environmentJSON struct {
		Variables map[string]string     `json:",omitempty"`
		Error     *environmentErrorJSON `json:",omitempty"`
	}
	environmentErrorJSON struct{ ErrorCode, Message string }
)

// configuration renders fn. withStatus is false for ListFunctions, which
// omits State and LastUpdateStatus. Callers hold s.mu.
func (s *Server) configuration(fn *function, withStatus bool) functionConfigurationJSON {
	f := fn.spec
	c := functionConfigurationJSON{
		FunctionName: f.Name,
		FunctionArn:  s.functionARN(f.Name),
		Runtime:      f.Runtime,
		Role:         fmt.Sprintf("arn:aws:iam::%s:role/%s-role", s.account, f.Name),
		Handler:      f.Handler,
		CodeSize:     1024,
		Description:  f.Description,
		Timeout:      f.Timeout,
		MemorySize:   f.MemorySize,
		LastModified: fn.lastModified.UTC().Format("2006-01-02T15:04:05.000-0700"),
		CodeSha256:   base64.StdEncoding.EncodeToString([]byte(f.Name + strings.Repeat("=", 32)))[:44],
		Version:      "$LATEST",
		RevisionId:   fn.revision,
		PackageType:  "Zip",
	}
	c.TracingConfig.Mode = "PassThrough"
	c.Architectures = []string{"x86_64"}
	c.EphemeralStorage.Size = 512
	c.LoggingConfig.LogFormat = "Text"
	c.LoggingConfig.LogGroup = "/aws/lambda/" + f.Name
	if f.VPC != nil {
		vpcID := f.VPC.VpcID
		if vpcID == "" && len(f.VPC.SubnetIDs) > 0 {
			vpcID = s.subnets[f.VPC.SubnetIDs[0]].VpcID
		}
		c.VpcConfig = &vpcConfigJSON{SubnetIds: nonNil(f.VPC.SubnetIDs), SecurityGroupIds: nonNil(f.VPC.SecurityGroupIDs), VpcId: vpcID}
	}
	switch {
	case f.KMSError != "":
		c.Environment = &environmentJSON{Error: &environmentErrorJSON{ErrorCode: f.KMSError, Message: kmsMessage(f.KMSError)}}
	case f.Env != nil:
		c.Environment = &environmentJSON{Variables: f.Env}
	}
	if withStatus {
		c.State = "Active"
		c.LastUpdateStatus = "Successful"
		if fn.updating {
			c.LastUpdateStatus = "InProgress"
		}
	}
	return c
}

func kmsMessage(code string) string {
	return "Lambda was unable to decrypt the environment variables because KMS access was denied. " +
		"Please check the function's KMS key settings. KMS Exception: " + code +
		" KMS Message: The ciphertext refers to a customer master key that does not exist, does not exist in this region, or you are not allowed to access."
}

func nonNil(v []string) []string {
	if v == nil {
		return []string{}
	}
	return v
}

// listFunctionsPageSize is the most ListFunctions returns per page, whatever MaxItems says.
const listFunctionsPageSize = 50

func (s *Server) listFunctions(w http.ResponseWriter, r *http.Request) {
	if !s.begin(w, r, "ListFunctions", protoLambda) {
		return
	}
	q := r.URL.Query()
	limit := listFunctionsPageSize
	if v := q.Get("MaxItems"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			writeLambdaError(w, apiError{status: 400, code: "ValidationException", message: fmt.Sprintf(
				"1 validation error detected: Value '%s' at 'maxItems' failed to satisfy constraint: Member must have value between 1 and 10000", v)})
			return
		}
		limit = min(n, listFunctionsPageSize)
	}
	start := ""
	if marker := q.Get("Marker"); marker != "" {
		raw, err := base64.RawURLEncoding.DecodeString(marker)
		if err != nil || !strings.HasPrefix(string(raw), "v1:") {
			writeLambdaError(w, apiError{status: 400, code: "InvalidParameterValueException", message: "Invalid marker: " + marker})
			return
		}
		start = strings.TrimPrefix(string(raw), "v1:")
	}

	s.mu.Lock()
	names := slices.Sorted(maps.Keys(s.functions))
	i, _ := slices.BinarySearch(names, start)
	end := min(i+limit, len(names))
	out := struct {
		Functions  []functionConfigurationJSON
		NextMarker string `json:",omitempty"`
	}{Functions: []functionConfigurationJSON{}}
	for _, name := range names[i:end] {
		fn := s.functions[name]
		s.settle(fn)
		out.Functions = append(out.Functions, s.configuration(fn, false))
	}
	if end < len(names) {
		out.NextMarker = base64.RawURLEncoding.EncodeToString([]byte("v1:" + names[end]))
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getFunction(w http.ResponseWriter, r *http.Request) {
	s.readFunction(w, r, "GetFunction", func(fn *function) any {
		out := struct {
			Configuration functionConfigurationJSON
			Code          struct{ RepositoryType, Location string }
			Tags          map[string]string
		}{Configuration: s.configuration(fn, true), Tags: map[string]string{"awssim": "true"}}
		out.Code.RepositoryType = "S3"
		out.Code.Location = "https://awslambda-" + s.region + "-tasks.s3." + s.region + ".amazonaws.com/snapshots/" + s.account + "/" + fn.spec.Name
		return out
	})
}

func (s *Server) getFunctionConfiguration(w http.ResponseWriter, r *http.Request) {
	s.readFunction(w, r, "GetFunctionConfiguration", func(fn *function) any { return s.configuration(fn, true) })
}

// readFunction serves a read of the function in the path: render builds the
// answer under s.mu.
func (s *Server) readFunction(w http.ResponseWriter, r *http.Request, op string, render func(*function) any) {
	if !s.begin(w, r, op, protoLambda) {
		return
	}
	s.mu.Lock()
	fn, aerr := s.lookupFunction(r.PathValue("name"), r.URL.Query().Get("Qualifier"))
	if aerr != nil {
		s.mu.Unlock()
		writeLambdaError(w, *aerr)
		return
	}
	out := render(fn)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

// updateFunctionConfigurationInput holds the members the emulator honours;
// others are accepted and ignored.
type updateFunctionConfigurationInput struct {
	Environment *struct {
		Variables map[string]string
	}
	RevisionId  *string
	Description *string
	Handler     *string
	Runtime     *string
	Timeout     *int32
	MemorySize  *int32
}

func (s *Server) updateFunctionConfiguration(w http.ResponseWriter, r *http.Request) {
	if !s.begin(w, r, "UpdateFunctionConfiguration", protoLambda) {
		return
	}
	var in updateFunctionConfigurationInput
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(&in); err != nil {
		writeLambdaError(w, apiError{status: 400, code: "SerializationException", message: "Could not parse request body: " + err.Error()})
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	fn, aerr := s.lookupFunction(r.PathValue("name"), "")
	if aerr != nil {
		writeLambdaError(w, *aerr)
		return
	}
	env := fn.spec.Env
	if in.Environment != nil {
		env = maps.Clone(in.Environment.Variables)
		if env == nil {
			env = map[string]string{}
		}
		if aerr := validateEnv(env); aerr != nil {
			writeLambdaError(w, *aerr)
			return
		}
	}
	if fn.updating {
		writeLambdaError(w, conflictError(s.functionARN(fn.spec.Name)))
		return
	}
	if in.RevisionId != nil && *in.RevisionId != fn.revision {
		writeLambdaError(w, apiError{status: 412, code: "PreconditionFailedException",
			message: "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id"})
		return
	}
	if in.Description != nil {
		fn.spec.Description = *in.Description
	}
	if in.Handler != nil {
		fn.spec.Handler = *in.Handler
	}
	if in.Runtime != nil {
		fn.spec.Runtime = *in.Runtime
	}
	if in.Timeout != nil {
		fn.spec.Timeout = *in.Timeout
	}
	if in.MemorySize != nil {
		fn.spec.MemorySize = *in.MemorySize
	}
	s.startUpdate(fn, env)
	s.updates[fn.spec.Name]++
	writeJSON(w, http.StatusOK, s.configuration(fn, true))
}

// maxEnvSize is Lambda's limit on the compact JSON of the variables map.
const maxEnvSize = 4096

// reservedEnvKeys are the variables the Lambda runtime sets and the API
// refuses to configure. AWS_LAMBDA_EXEC_WRAPPER and other AWS_LAMBDA_* names
// outside this list are allowed.
var reservedEnvKeys = map[string]bool{
	"_HANDLER": true, "_X_AMZN_TRACE_ID": true, "AWS_REGION": true, "AWS_DEFAULT_REGION": true,
	"AWS_EXECUTION_ENV": true, "AWS_LAMBDA_FUNCTION_NAME": true, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": true,
	"AWS_LAMBDA_FUNCTION_VERSION": true, "AWS_LAMBDA_INITIALIZATION_TYPE": true, "AWS_LAMBDA_LOG_GROUP_NAME": true,
	"AWS_LAMBDA_LOG_STREAM_NAME": true, "AWS_LAMBDA_RUNTIME_API": true, "AWS_ACCESS_KEY": true,
	"AWS_ACCESS_KEY_ID": true, "AWS_SECRET_ACCESS_KEY": true, "AWS_SESSION_TOKEN": true,
	"LAMBDA_TASK_ROOT": true, "LAMBDA_RUNTIME_DIR": true,
}

// validateEnv applies Lambda's checks in its order: key pattern
// (ValidationException), reserved keys, then the 4 KB limit
// (InvalidParameterValueException).
func validateEnv(env map[string]string) *apiError {
	keys := slices.Sorted(maps.Keys(env))
	for _, k := range keys {
		if !envKeyPattern.MatchString(k) {
			return &apiError{status: 400, code: "ValidationException", message: "1 validation error detected: " +
				"Value at 'environment.variables' failed to satisfy constraint: Map keys must satisfy constraint: " +
				"[Member must satisfy regular expression pattern: [a-zA-Z]([a-zA-Z0-9_])+]"}
		}
	}
	var reserved []string
	for _, k := range keys {
		if reservedEnvKeys[k] {
			reserved = append(reserved, k)
		}
	}
	if len(reserved) > 0 {
		return &apiError{status: 400, code: "InvalidParameterValueException", message: "Lambda was unable to configure your environment " +
			"variables because the environment variables you have provided contains reserved keys that are currently not supported " +
			"for modification. Reserved keys used in this request: " + strings.Join(reserved, ", ")}
	}
	if size := EnvSize(env); size > maxEnvSize {
		return &apiError{status: 400, code: "InvalidParameterValueException", message: fmt.Sprintf("Lambda was unable to configure "+
			"your environment variables because the environment variables you have provided exceeded the 4KB limit. "+
			"String measured: %d bytes", size)}
	}
	return nil
}

// EnvSize is the size Lambda measures against its 4 KB limit: the bytes of
// the map's compact JSON encoding (no HTML escaping).
func EnvSize(env map[string]string) int {
	if env == nil {
		env = map[string]string{}
	}
	return len(CompactJSON(env))
}
