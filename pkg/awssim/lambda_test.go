package awssim_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"

	"github.com/stptunnel/stptunnel/pkg/awssim"
)

func TestListFunctionsPages(t *testing.T) {
	s := newServer(t, awssim.Options{Quotas: awssim.Quotas{Off: true}}) // 24 pages at once: beyond an account's 15 per second
	for i := range 120 {
		s.PutFunction(awssim.Function{Name: fmt.Sprintf("fn-%03d", i), Env: map[string]string{"INDEX": fmt.Sprint(i)}})
	}
	c := newClients(s).lambda

	for _, tc := range []struct {
		maxItems  *int32
		wantPages []int
	}{
		{nil, []int{50, 50, 20}},
		{aws.Int32(100), []int{50, 50, 20}},
		{aws.Int32(7), nil}, // 17 pages of 7 and one of 1
	} {
		var sizes []int
		seen := map[string]bool{}
		p := lambda.NewListFunctionsPaginator(c, &lambda.ListFunctionsInput{MaxItems: tc.maxItems})
		for p.HasMorePages() {
			page, err := p.NextPage(ctxT(t))
			if err != nil {
				t.Fatal(err)
			}
			sizes = append(sizes, len(page.Functions))
			for _, f := range page.Functions {
				seen[*f.FunctionName] = true
				if f.State != "" || f.LastUpdateStatus != "" {
					t.Errorf("%s: ListFunctions item has State %q LastUpdateStatus %q; AWS omits them", *f.FunctionName, f.State, f.LastUpdateStatus)
				}
				if f.Environment == nil || f.Environment.Variables["INDEX"] == "" {
					t.Errorf("%s: ListFunctions item without Environment.Variables", *f.FunctionName)
				}
			}
		}
		if len(seen) != 120 {
			t.Errorf("MaxItems %v: listed %d distinct functions, want 120", tc.maxItems, len(seen))
		}
		if tc.wantPages != nil && fmt.Sprint(sizes) != fmt.Sprint(tc.wantPages) {
			t.Errorf("MaxItems %v: page sizes %v, want %v", tc.maxItems, sizes, tc.wantPages)
		}
		if tc.maxItems != nil && *tc.maxItems == 7 && (len(sizes) != 18 || sizes[0] != 7) {
			t.Errorf("MaxItems 7: page sizes %v", sizes)
		}
	}

	_, err := c.ListFunctions(ctxT(t), &lambda.ListFunctionsInput{Marker: aws.String("garbage!")})
	var invalid *types.InvalidParameterValueException
	if !errors.As(err, &invalid) {
		t.Errorf("bad marker: got %v, want InvalidParameterValueException", err)
	}
}

func TestFunctionReferences(t *testing.T) {
	s := newServer(t, awssim.Options{AccountID: "111122223333"})
	s.PutFunction(awssim.Function{Name: "api", Env: map[string]string{"K1": "v"}})
	c := newClients(s).lambda
	arn := "arn:aws:lambda:eu-west-1:111122223333:function:api"

	for _, tc := range []struct {
		ref, qualifier, wantCode string
	}{
		{ref: "api"},
		{ref: arn},
		{ref: arn + ":$LATEST"},
		{ref: "111122223333:function:api"},
		{ref: "api", qualifier: "$LATEST"},
		{ref: "missing", wantCode: "ResourceNotFoundException"},
		{ref: "arn:aws:lambda:eu-west-1:999999999999:function:api", wantCode: "ResourceNotFoundException"},
		{ref: "arn:aws:lambda:us-east-2:111122223333:function:api", wantCode: "ResourceNotFoundException"},
		{ref: "api", qualifier: "7", wantCode: "ResourceNotFoundException"},
		{ref: "not a name", wantCode: "ValidationException"},
	} {
		in := &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(tc.ref)}
		if tc.qualifier != "" {
			in.Qualifier = aws.String(tc.qualifier)
		}
		out, err := c.GetFunctionConfiguration(ctxT(t), in)
		if tc.wantCode == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.ref, err)
				continue
			}
			if *out.FunctionArn != arn || out.Environment.Variables["K1"] != "v" || out.State != types.StateActive ||
				out.LastUpdateStatus != types.LastUpdateStatusSuccessful {
				t.Errorf("%s: got %s env %v state %s/%s", tc.ref, *out.FunctionArn, out.Environment.Variables, out.State, out.LastUpdateStatus)
			}
			continue
		}
		var apiErr smithy.APIError
		if !errors.As(err, &apiErr) || apiErr.ErrorCode() != tc.wantCode {
			t.Errorf("%s: got %v, want %s", tc.ref, err, tc.wantCode)
		}
	}

	_, err := c.GetFunction(ctxT(t), &lambda.GetFunctionInput{FunctionName: aws.String("gone")})
	var notFound *types.ResourceNotFoundException
	if !errors.As(err, &notFound) || notFound.ErrorMessage() != "Function not found: arn:aws:lambda:eu-west-1:111122223333:function:gone" ||
		aws.ToString(notFound.Type) != "User" {
		t.Errorf("GetFunction gone: got %#v", err)
	}
}

// TestErrorWireShape checks the bytes the SDK deserialises errors from.
func TestErrorWireShape(t *testing.T) {
	s := newServer(t, awssim.Options{})
	resp, err := http.Get(s.URL() + "/2015-03-31/functions/" + url.PathEscape("arn:aws:lambda:eu-west-1:123456789012:function:nope") + "/configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var got map[string]string
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("body %s: %v", body, err)
	}
	if resp.StatusCode != 404 || resp.Header.Get("X-Amzn-ErrorType") != "ResourceNotFoundException" ||
		got["Type"] != "User" || got["message"] != "Function not found: arn:aws:lambda:eu-west-1:123456789012:function:nope" {
		t.Errorf("got %d %v %s", resp.StatusCode, resp.Header, body)
	}
}

func TestUpdateReplacesMapAndCompletes(t *testing.T) {
	s := newServer(t, awssim.Options{UpdateDelay: 30 * time.Millisecond})
	s.PutFunction(awssim.Function{Name: "api", Env: map[string]string{"KEEP": "1", "DROP": "2"}})
	c := newClients(s).lambda

	before, err := c.GetFunction(ctxT(t), &lambda.GetFunctionInput{FunctionName: aws.String("api")})
	if err != nil {
		t.Fatal(err)
	}
	newEnv := map[string]string{"KEEP": "1", "ADDED": "postgres://u:p@bore.pub:1234/db"}
	out, err := c.UpdateFunctionConfiguration(ctxT(t), &lambda.UpdateFunctionConfigurationInput{
		FunctionName: aws.String("api"),
		RevisionId:   before.Configuration.RevisionId,
		Environment:  &types.Environment{Variables: newEnv},
	})
	if err != nil {
		t.Fatal(err)
	}
	if out.LastUpdateStatus != types.LastUpdateStatusInProgress || *out.RevisionId == *before.Configuration.RevisionId {
		t.Errorf("update answered %s revision %s (before %s), want InProgress and a new revision",
			out.LastUpdateStatus, *out.RevisionId, *before.Configuration.RevisionId)
	}
	if !maps.Equal(out.Environment.Variables, newEnv) {
		t.Errorf("update answered env %v, want %v", out.Environment.Variables, newEnv)
	}

	done := waitUpdated(t, c, "api")
	if done.Configuration.LastUpdateStatus != types.LastUpdateStatusSuccessful {
		t.Errorf("after waiter: %s", done.Configuration.LastUpdateStatus)
	}
	if *done.Configuration.RevisionId == *out.RevisionId {
		t.Errorf("revision did not change when the update completed")
	}
	if env, _ := s.Env("api"); !maps.Equal(env, newEnv) {
		t.Errorf("Env = %v, want %v (the whole map replaced)", env, newEnv)
	}
	if n := s.Updates("api"); n != 1 {
		t.Errorf("Updates = %d, want 1", n)
	}

	// An Environment without Variables clears the map.
	if _, err := c.UpdateFunctionConfiguration(ctxT(t), &lambda.UpdateFunctionConfigurationInput{
		FunctionName: aws.String("arn:aws:lambda:eu-west-1:123456789012:function:api"),
		Environment:  &types.Environment{},
	}); err != nil {
		t.Fatal(err)
	}
	if env, _ := s.Env("api"); len(env) != 0 {
		t.Errorf("after clearing: %v", env)
	}
	if n := s.Updates("api"); n != 2 {
		t.Errorf("Updates = %d, want 2", n)
	}
}

func TestUpdatePreconditionAndConflict(t *testing.T) {
	s := newServer(t, awssim.Options{UpdateDelay: time.Hour})
	s.PutFunction(awssim.Function{Name: "api", Env: map[string]string{"A1": "x"}})
	c := newClients(s).lambda
	rev, _ := s.Revision("api")

	_, err := c.UpdateFunctionConfiguration(ctxT(t), &lambda.UpdateFunctionConfigurationInput{
		FunctionName: aws.String("api"), RevisionId: aws.String("stale"),
		Environment: &types.Environment{Variables: map[string]string{"A1": "y"}},
	})
	var precondition *types.PreconditionFailedException
	if !errors.As(err, &precondition) {
		t.Fatalf("stale revision: got %v, want PreconditionFailedException", err)
	}

	if _, err := c.UpdateFunctionConfiguration(ctxT(t), &lambda.UpdateFunctionConfigurationInput{
		FunctionName: aws.String("api"), RevisionId: aws.String(rev),
		Environment: &types.Environment{Variables: map[string]string{"A1": "y"}},
	}); err != nil {
		t.Fatal(err)
	}
	_, err = c.UpdateFunctionConfiguration(ctxT(t), &lambda.UpdateFunctionConfigurationInput{
		FunctionName: aws.String("api"), Environment: &types.Environment{Variables: map[string]string{"A1": "z"}},
	})
	var conflict *types.ResourceConflictException
	if !errors.As(err, &conflict) || !strings.Contains(conflict.ErrorMessage(),
		"An update is in progress for resource: arn:aws:lambda:eu-west-1:123456789012:function:api") {
		t.Fatalf("update while in progress: got %v, want ResourceConflictException", err)
	}
	if n := s.Calls("UpdateFunctionConfiguration"); n != 3 {
		t.Errorf("Calls = %d, want 3 (409 and 412 are not retried)", n)
	}
	if n := s.Updates("api"); n != 1 {
		t.Errorf("Updates = %d, want 1", n)
	}
	if env, _ := s.Env("api"); env["A1"] != "y" {
		t.Errorf("env %v", env)
	}
}

func TestUpdateValidatesEnvironment(t *testing.T) {
	s := newServer(t, awssim.Options{})
	s.PutFunction(awssim.Function{Name: "api"})
	c := newClients(s).lambda

	// {"BIG":"vvv..."} is 10 bytes plus the value.
	exactly := map[string]string{"BIG": strings.Repeat("v", 4086)}
	if got := awssim.EnvSize(exactly); got != 4096 {
		t.Fatalf("EnvSize = %d, want 4096", got)
	}
	// stptunnel's session marker is one more variable, compact JSON whose quotes count escaped, as Lambda counts them.
	marker := `{"v":1,"id":"aaaaaaaaaaaa","by":"ana@laptop","at":"2026-03-01T10:00:00Z","pub":["bore.pub:54321"],"keys":{"BIG":{"b":null,"h":"ungWv48Bz-pBQUDe"}}}`
	withMarker := func(size int) map[string]string {
		env := map[string]string{"STPTUNNEL_SESSION": marker, "BIG": ""}
		env["BIG"] = strings.Repeat("v", size-awssim.EnvSize(env))
		raw := len("BIG") + len(env["BIG"]) + len("STPTUNNEL_SESSION") + len(marker)
		if awssim.EnvSize(env) != size || size-raw < strings.Count(marker, `"`) {
			t.Fatalf("withMarker(%d): measured %d, raw %d: the marker's escapes are not counted", size, awssim.EnvSize(env), raw)
		}
		return env
	}
	for _, tc := range []struct {
		name     string
		env      map[string]string
		wantCode string
		wantText string
	}{
		{"exactly 4096 bytes", exactly, "", ""},
		{"exactly 4096 bytes with a session marker", withMarker(4096), "", ""},
		{"4097 bytes with a session marker", withMarker(4097), "InvalidParameterValueException", "exceeded the 4KB limit"},
		{"4097 bytes", map[string]string{"BIG": strings.Repeat("v", 4087)}, "InvalidParameterValueException", "exceeded the 4KB limit"},
		{"escapes count", map[string]string{"BIG": strings.Repeat(`"`, 2044)}, "InvalidParameterValueException", "4KB"},
		{"reserved AWS_REGION", map[string]string{"OK_KEY": "1", "AWS_REGION": "x"}, "InvalidParameterValueException", "Reserved keys used in this request: AWS_REGION"},
		{"reserved AWS_LAMBDA_FUNCTION_NAME", map[string]string{"AWS_LAMBDA_FUNCTION_NAME": "x"}, "InvalidParameterValueException", "reserved keys"},
		{"reserved AWS_SESSION_TOKEN", map[string]string{"AWS_SESSION_TOKEN": "x"}, "InvalidParameterValueException", "reserved keys"},
		{"exec wrapper allowed", map[string]string{"AWS_LAMBDA_EXEC_WRAPPER": "/opt/w"}, "", ""},
		{"leading digit", map[string]string{"1KEY": "x"}, "ValidationException", "[a-zA-Z]([a-zA-Z0-9_])+"},
		{"single letter", map[string]string{"A": "x"}, "ValidationException", "regular expression"},
		{"dash", map[string]string{"MY-KEY": "x"}, "ValidationException", "regular expression"},
		{"underscore handler", map[string]string{"_HANDLER": "x"}, "ValidationException", "regular expression"},
	} {
		before := s.Updates("api")
		_, err := c.UpdateFunctionConfiguration(ctxT(t), &lambda.UpdateFunctionConfigurationInput{
			FunctionName: aws.String("api"), Environment: &types.Environment{Variables: tc.env},
		})
		if tc.wantCode == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			waitUpdated(t, c, "api")
			continue
		}
		var apiErr smithy.APIError
		if !errors.As(err, &apiErr) || apiErr.ErrorCode() != tc.wantCode || !strings.Contains(apiErr.ErrorMessage(), tc.wantText) {
			t.Errorf("%s: got %v, want %s containing %q", tc.name, err, tc.wantCode, tc.wantText)
		}
		if tc.wantCode == "InvalidParameterValueException" {
			var typed *types.InvalidParameterValueException
			if !errors.As(err, &typed) {
				t.Errorf("%s: %T is not *types.InvalidParameterValueException", tc.name, err)
			}
		}
		if s.Updates("api") != before {
			t.Errorf("%s: a rejected update counted", tc.name)
		}
	}
}

func TestKMSError(t *testing.T) {
	s := newServer(t, awssim.Options{})
	s.PutFunction(awssim.Function{Name: "secret", Env: map[string]string{"DB": "x"}, KMSError: "AccessDeniedException"})
	c := newClients(s).lambda

	cfg, err := c.GetFunctionConfiguration(ctxT(t), &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("secret")})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Environment == nil || cfg.Environment.Variables != nil || cfg.Environment.Error == nil ||
		aws.ToString(cfg.Environment.Error.ErrorCode) != "AccessDeniedException" ||
		!strings.Contains(aws.ToString(cfg.Environment.Error.Message), "KMS") {
		t.Errorf("Environment = %+v, want Error and no Variables", cfg.Environment)
	}
	list, err := c.ListFunctions(ctxT(t), &lambda.ListFunctionsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if e := list.Functions[0].Environment; e == nil || e.Variables != nil || e.Error == nil {
		t.Errorf("ListFunctions Environment = %+v", e)
	}
	if _, err := s.Invoke(ctxT(t), "secret", nil); !errors.Is(err, awssim.ErrKMSAccessDenied) {
		t.Errorf("Invoke: %v", err)
	}
}

func TestOutOfBandChanges(t *testing.T) {
	s := newServer(t, awssim.Options{})
	s.PutFunction(awssim.Function{Name: "api", Env: map[string]string{"K1": "v1"}})
	c := newClients(s).lambda

	read, err := c.GetFunctionConfiguration(ctxT(t), &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("api")})
	if err != nil {
		t.Fatal(err)
	}
	s.SetEnv("api", map[string]string{"K1": "deployed"})
	_, err = c.UpdateFunctionConfiguration(ctxT(t), &lambda.UpdateFunctionConfigurationInput{
		FunctionName: aws.String("api"), RevisionId: read.RevisionId,
		Environment: &types.Environment{Variables: map[string]string{"K1": "patched"}},
	})
	var precondition *types.PreconditionFailedException
	if !errors.As(err, &precondition) {
		t.Errorf("update after a deploy with the old revision: got %v, want PreconditionFailedException", err)
	}
	if n := s.Updates("api"); n != 0 {
		t.Errorf("SetEnv counted as an update: %d", n)
	}

	s.DeleteFunction("api")
	_, err = c.GetFunction(ctxT(t), &lambda.GetFunctionInput{FunctionName: aws.String("api")})
	var notFound *types.ResourceNotFoundException
	if !errors.As(err, &notFound) {
		t.Errorf("after delete: %v", err)
	}
	if _, ok := s.Env("api"); ok {
		t.Errorf("Env of a deleted function")
	}
}

// TestConcurrentReadModifyWrite runs writers that each add their own key with
// RevisionId preconditions, retrying 412 and 409: every key must survive.
func TestConcurrentReadModifyWrite(t *testing.T) {
	// 12 writers racing with 1 ms back-off: hundreds of calls a second, beyond an account's quota.
	s := newServer(t, awssim.Options{UpdateDelay: time.Millisecond, Quotas: awssim.Quotas{Off: true}})
	s.PutFunction(awssim.Function{Name: "api", Env: map[string]string{"BASE": "1"}})
	c := newClients(s).lambda
	const writers = 12

	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for i := range writers {
		wg.Go(func() {
			key := fmt.Sprintf("WRITER_%d", i)
			for attempt := 0; ; attempt++ {
				if attempt > 500 {
					errs <- fmt.Errorf("%s: gave up", key)
					return
				}
				cur, err := c.GetFunctionConfiguration(t.Context(), &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("api")})
				if err != nil {
					errs <- err
					return
				}
				env := maps.Clone(cur.Environment.Variables)
				env[key] = "x"
				_, err = c.UpdateFunctionConfiguration(t.Context(), &lambda.UpdateFunctionConfigurationInput{
					FunctionName: aws.String("api"), RevisionId: cur.RevisionId, Environment: &types.Environment{Variables: env},
				})
				var precondition *types.PreconditionFailedException
				var conflict *types.ResourceConflictException
				switch {
				case err == nil:
					return
				case errors.As(err, &precondition), errors.As(err, &conflict):
					time.Sleep(time.Millisecond) // let the update in progress finish
				default:
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	env, _ := s.Env("api")
	if len(env) != writers+1 {
		t.Errorf("env has %d keys, want %d: %v", len(env), writers+1, env)
	}
	if n := s.Updates("api"); n != writers {
		t.Errorf("Updates = %d, want %d", n, writers)
	}
}
