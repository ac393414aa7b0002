package simscript_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/stptunnel/stptunnel/pkg/awssim/simscript"
)

func TestScripts(t *testing.T) {
	cmds := simscript.Commands()
	cmds["sdk-update"] = sdkUpdate
	cmds["sdk-burst"] = sdkBurst
	testscript.Run(t, testscript.Params{Dir: "testdata", Cmds: cmds})
}

// sdkBurst OP N calls OP (GetFunction or GetFunctionConfiguration) on function api N times in a row, one attempt
// each, and prints how many passed and how many were throttled.
func sdkBurst(ts *testscript.TestScript, neg bool, args []string) {
	n := 0
	if len(args) == 2 {
		n, _ = strconv.Atoi(args[1])
	}
	if neg || n < 1 || (args[0] != "GetFunction" && args[0] != "GetFunctionConfiguration") {
		ts.Fatalf("usage: sdk-burst GetFunction|GetFunctionConfiguration N")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := scriptClient(ts, 1)
	passed, throttled := 0, 0
	for range n {
		var err error
		if args[0] == "GetFunction" {
			_, err = c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("api")})
		} else {
			_, err = c.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("api")})
		}
		var tmr *types.TooManyRequestsException
		switch {
		case err == nil:
			passed++
		case errors.As(err, &tmr):
			throttled++
		default:
			ts.Fatalf("sdk-burst: %v", err)
		}
	}
	fmt.Fprintf(ts.Stdout(), "%d passed, %d throttled\n", passed, throttled)
}

// scriptClient is a Lambda client configured only from the variables awssim exported; maxAttempts 0 keeps the
// SDK's default retryer.
func scriptClient(ts *testscript.TestScript, maxAttempts int) *lambda.Client {
	return lambda.NewFromConfig(aws.Config{
		Region:           ts.Getenv("AWS_REGION"),
		BaseEndpoint:     aws.String(ts.Getenv("AWS_ENDPOINT_URL")),
		Credentials:      credentials.NewStaticCredentialsProvider(ts.Getenv("AWS_ACCESS_KEY_ID"), ts.Getenv("AWS_SECRET_ACCESS_KEY"), ""),
		RetryMaxAttempts: maxAttempts,
	})
}

// sdkUpdate FUNCTION KEY=VALUE... does what `env patch` does, through the
// real SDK configured only from the variables awssim exported: read, update
// with RevisionId, wait for Successful. It prints the error code on failure.
func sdkUpdate(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: sdk-update FUNCTION KEY=VALUE...")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := scriptClient(ts, 0)
	err := func() error {
		cur, err := c.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(args[0])})
		if err != nil {
			return err
		}
		env := maps.Clone(cur.Environment.Variables)
		for _, kv := range args[1:] {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		if _, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
			FunctionName: aws.String(args[0]), RevisionId: cur.RevisionId, Environment: &types.Environment{Variables: env},
		}); err != nil {
			return err
		}
		w := lambda.NewFunctionUpdatedV2Waiter(c, func(o *lambda.FunctionUpdatedV2WaiterOptions) {
			o.MinDelay, o.MaxDelay = 5*time.Millisecond, 50*time.Millisecond
		})
		return w.Wait(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(args[0])}, 10*time.Second)
	}()
	switch {
	case err != nil && neg:
		fmt.Fprintf(ts.Stderr(), "%v\n", err)
	case err != nil:
		ts.Fatalf("sdk-update: %v", err)
	case neg:
		ts.Fatalf("sdk-update succeeded")
	}
}
