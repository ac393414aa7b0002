package cli

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/urfave/cli/v2"
)

// awsConfig loads the SDK's default configuration chain (environment, shared config and SSO profiles,
// AWS_ENDPOINT_URL*), with --region and --profile applied on top. region is the document's region, used when
// neither the flag nor the environment gives one.
func (a *app) awsConfig(ctx context.Context, c *cli.Context, region string) (aws.Config, error) {
	if a.awsOverride != nil { // demo: the embedded emulator, whatever the environment says
		return a.awsOverride.Copy(), nil
	}
	var opts []func(*config.LoadOptions) error
	if r := globalString(c, flagRegion); r != "" {
		region = r
	}
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	if p := globalString(c, flagProfile); p != "" {
		opts = append(opts, config.WithSharedConfigProfile(p))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("loading AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return aws.Config{}, usageError("no AWS region: pass --region, set AWS_REGION, or put \"region\" in the document")
	}
	return cfg, nil
}
