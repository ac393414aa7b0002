package services

import (
	"context"
	"path/filepath"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

const installDynalite = "npm install --global dynalite"

// findDynalite finds dynalite, or says it is missing.
func findDynalite() (string, error) { return lookPath(KindDynalite, installDynalite, nil, "dynalite") }

// StartDynalite starts dynalite (DynamoDB Local) on a free loopback port, its LevelDB store in the server's own
// directory, tables ACTIVE as soon as they are created.
func StartDynalite(ctx context.Context, opts Options) (*Server, error) {
	begin := time.Now()
	opts = opts.withDefaults()
	dynalite, err := findDynalite()
	if err != nil {
		return nil, err
	}
	self := account{uid: -1, gid: -1}
	dir, err := newDir(KindDynalite, self)
	if err != nil {
		return nil, err
	}
	launchAt := func(port int) (*process, error) {
		return launch(self, dir, sigterm, dynalite, "--port", strconv.Itoa(port), "--host", "127.0.0.1",
			"--path", filepath.Join(dir, "db"), "--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0")
	}
	ping := func(ctx context.Context, port int) error {
		_, err := DynamoDBClient("http://127.0.0.1:"+strconv.Itoa(port)).ListTables(ctx, &dynamodb.ListTablesInput{})
		return err
	}
	return startServer(ctx, begin, KindDynalite, opts, dir, launchAt, ping)
}

// DynamoDBClient is a client of the DynamoDB endpoint with dummy credentials, no retries and nothing read from
// the environment or ~/.aws: for tests talking to dynalite directly.
func DynamoDBClient(endpoint string) *dynamodb.Client {
	return dynamodb.New(dynamodb.Options{
		BaseEndpoint:     aws.String(endpoint),
		Region:           "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider("local", "local", ""),
		RetryMaxAttempts: 1,
	})
}
