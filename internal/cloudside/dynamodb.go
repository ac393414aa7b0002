package cloudside

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// DynamoDB is a function using the SDK's DynamoDB client with no endpoint in its code: the SDK's default
// configuration finds AWS_ENDPOINT_URL_DYNAMODB in the function's environment, as it does in Lambda. The
// handler also checks variable (STP_<NAME>_ENDPOINT), the one Stacktape's convention names.
func (c Cloud) DynamoDB(variable string) Handler {
	return func(ctx context.Context, env map[string]string, payload []byte) ([]byte, error) {
		return c.run(ctx, payload, "aws-sdk-go-v2/dynamodb", func(ctx context.Context, d *dialer, req Request) (Response, error) {
			if _, err := c.env(env, variable, 8000); err != nil {
				return Response{}, err
			}
			if _, err := c.env(env, "AWS_ENDPOINT_URL_DYNAMODB", 8000); err != nil {
				return Response{}, err
			}
			cfg, err := lambdaConfig(ctx, env, d)
			if err != nil {
				return Response{}, err
			}
			db := dynamodb.NewFromConfig(cfg)
			if err := ensureTable(ctx, db); err != nil {
				return Response{}, err
			}
			_, err = db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(Table), Item: map[string]types.AttributeValue{
				"k": &types.AttributeValueMemberS{Value: req.Key}, "v": &types.AttributeValueMemberS{Value: req.Value}}})
			if err != nil {
				return Response{}, err
			}
			out, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(Table), ConsistentRead: aws.Bool(true),
				Key: map[string]types.AttributeValue{"k": &types.AttributeValueMemberS{Value: req.Key}}})
			if err != nil {
				return Response{}, err
			}
			v, ok := out.Item["v"].(*types.AttributeValueMemberS)
			if !ok {
				return Response{}, fmt.Errorf("item %q read back without its value: %v", req.Key, out.Item)
			}
			return Response{Value: v.Value}, nil
		})
	}
}

// lambdaConfig is config.LoadDefaultConfig as it runs inside Lambda, where the function's variables are the
// process environment: region, credentials and endpoints come from env, not from this test process.
func lambdaConfig(ctx context.Context, env map[string]string, d *dialer) (aws.Config, error) {
	// The SDK lets a process-wide AWS_ENDPOINT_URL override the function's own service endpoint: refuse to run
	// rather than test the wrong thing.
	if _, global := os.LookupEnv("AWS_ENDPOINT_URL"); global {
		if _, service := os.LookupEnv("AWS_ENDPOINT_URL_DYNAMODB"); !service {
			return aws.Config{}, errors.New("the test process has AWS_ENDPOINT_URL set: it would hide the function's AWS_ENDPOINT_URL_DYNAMODB")
		}
	}
	key, secret := env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]
	if key == "" {
		key, secret = "cloudside", "cloudside" // Lambda always sets them; dynalite checks only that they exist
	}
	opts := []func(*config.LoadOptions) error{
		config.WithRegion(env["AWS_REGION"]),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(key, secret, env["AWS_SESSION_TOKEN"])),
		config.WithSharedConfigFiles([]string{}),
		config.WithSharedCredentialsFiles([]string{}),
		config.WithRetryMaxAttempts(1),
		config.WithHTTPClient(awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
			t.DialContext = d.DialContext
		})),
	}
	if base := env["AWS_ENDPOINT_URL"]; base != "" {
		opts = append(opts, config.WithBaseEndpoint(base))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("loading the SDK configuration: %w", err)
	}
	// Service endpoints (AWS_ENDPOINT_URL_<SERVICE>) are looked up in the configuration sources at client
	// creation: the function's environment goes first.
	cfg.ConfigSources = append([]any{functionEnv(env)}, cfg.ConfigSources...)
	return cfg, nil
}

// functionEnv is a configuration source reading the function's environment.
type functionEnv map[string]string

// GetServiceBaseEndpoint is AWS_ENDPOINT_URL_<SDK ID in SNAKE_CASE>, as the SDK reads it from the environment.
func (e functionEnv) GetServiceBaseEndpoint(_ context.Context, sdkID string) (string, bool, error) {
	v := e["AWS_ENDPOINT_URL_"+strings.ToUpper(strings.ReplaceAll(sdkID, " ", "_"))]
	return v, v != "", nil
}

func ensureTable(ctx context.Context, db *dynamodb.Client) error {
	_, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(Table)})
	var missing *types.ResourceNotFoundException
	if err != nil && !errors.As(err, &missing) {
		return err
	}
	if err == nil {
		return waitActive(ctx, db) // it may still be CREATING, made by another invocation
	}
	_, err = db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(Table),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("k"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("k"), KeyType: types.KeyTypeHash}},
		BillingMode:          types.BillingModePayPerRequest,
	})
	var exists *types.ResourceInUseException
	if err != nil && !errors.As(err, &exists) {
		return err
	}
	return waitActive(ctx, db)
}

func waitActive(ctx context.Context, db *dynamodb.Client) error {
	// A new table is CREATING until DynamoDB (even dynalite, a moment later) makes it ACTIVE.
	waiter := dynamodb.NewTableExistsWaiter(db, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = 10*time.Millisecond, 200*time.Millisecond
	})
	return waiter.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(Table)}, 15*time.Second)
}
