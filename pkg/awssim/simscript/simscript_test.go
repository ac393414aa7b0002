package simscript_test

import (
	"context"
	"fmt"
	"maps"
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
	testscript.Run(t, testscript.Params{Dir: "testdata", Cmds: cmds})
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
	c := lambda.NewFromConfig(aws.Config{
		Region:       ts.Getenv("AWS_REGION"),
		BaseEndpoint: aws.String(ts.Getenv("AWS_ENDPOINT_URL")),
		Credentials:  credentials.NewStaticCredentialsProvider(ts.Getenv("AWS_ACCESS_KEY_ID"), ts.Getenv("AWS_SECRET_ACCESS_KEY"), ""),
	})
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
