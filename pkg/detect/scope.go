package detect

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"
	"golang.org/x/sync/errgroup"
)

// Scope selects the functions to look at. Functions, when set, are exactly the functions examined; otherwise
// Stack and Prefix both filter the functions of the region (none: every function).
type Scope struct {
	Functions []string // names or ARNs
	Prefix    string
	Stack     string
}

// LambdaAPI is the part of the Lambda client detect uses.
type LambdaAPI interface {
	lambda.ListFunctionsAPIClient
	GetFunctionConfiguration(context.Context, *lambda.GetFunctionConfigurationInput, ...func(*lambda.Options)) (*lambda.GetFunctionConfigurationOutput, error)
}

// CloudFormationAPI is the part of the CloudFormation client detect uses.
type CloudFormationAPI interface {
	cloudformation.ListStackResourcesAPIClient
}

// StackNotFoundError reports a --stack that does not exist: bad input.
type StackNotFoundError struct {
	Stack string
	Err   error
}

func (e *StackNotFoundError) Error() string {
	return fmt.Sprintf("stack %q does not exist: %v", e.Stack, e.Err)
}
func (e *StackNotFoundError) Unwrap() error { return e.Err }

// function is what detect needs of a deployed function, from a listing or a configuration.
type function struct {
	name, arn string
	env       map[string]string
	envError  *lambdatypes.EnvironmentError
	vpcID     string
	subnets   []string
	groups    []string // its security groups, when in a VPC
}

func fromConfiguration(c lambdatypes.FunctionConfiguration) function {
	f := function{name: aws.ToString(c.FunctionName), arn: aws.ToString(c.FunctionArn)}
	if c.Environment != nil {
		f.env, f.envError = c.Environment.Variables, c.Environment.Error
	}
	if c.VpcConfig != nil && aws.ToString(c.VpcConfig.VpcId) != "" && len(c.VpcConfig.SubnetIds) > 0 {
		f.vpcID, f.subnets, f.groups = aws.ToString(c.VpcConfig.VpcId), c.VpcConfig.SubnetIds, c.VpcConfig.SecurityGroupIds
	}
	return f
}

// getConcurrency bounds the GetFunctionConfiguration calls in flight for --function names.
const getConcurrency = 8

// named reads the configuration of each named function. Those that do not exist or cannot be read are skips.
func (r *run) named(ctx context.Context, refs []string) ([]function, error) {
	type outcome struct {
		fn   *function
		skip *skip
	}
	out := make([]outcome, len(refs))
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(getConcurrency)
	for i, ref := range refs {
		g.Go(func() error {
			c, err := r.lambda.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(ref)})
			var notFound *lambdatypes.ResourceNotFoundException
			switch {
			case errors.As(err, &notFound):
				out[i].skip = &skip{name: nameOf(ref), reason: reasonNotFound, message: fmt.Sprintf(
					"is not deployed in %s: deploy it first, then run detect again", r.Region)}
			case isDenied(err):
				out[i].skip = &skip{name: nameOf(ref), reason: reasonNoAccess, message: fmt.Sprintf(
					"cannot read its configuration (%s): grant lambda:GetFunctionConfiguration to check it", errorCode(err))}
			case err != nil:
				return fmt.Errorf("reading the configuration of %s: %w", ref, err)
			default:
				f := fromConfiguration(lambdatypes.FunctionConfiguration{FunctionName: c.FunctionName,
					FunctionArn: c.FunctionArn, Environment: c.Environment, VpcConfig: c.VpcConfig})
				out[i].fn = &f
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var fns []function
	seen := map[string]bool{}
	for _, o := range out {
		switch {
		case o.skip != nil && !seen["skip:"+o.skip.name]:
			seen["skip:"+o.skip.name] = true
			r.skip(o.skip.name, o.skip.reason, o.skip.message)
		case o.fn != nil && !seen[o.fn.arn]:
			seen[o.fn.arn] = true
			fns = append(fns, *o.fn)
		}
	}
	return fns, nil
}

// skip is a skip decided before the function is known by its configuration.
type skip struct{ name, reason, message string }

// list reads every function of the region (all pages) and keeps those keep accepts.
func (r *run) list(ctx context.Context, keep func(name string) bool) ([]function, error) {
	var fns []function
	p := lambda.NewListFunctionsPaginator(r.lambda, &lambda.ListFunctionsInput{MaxItems: aws.Int32(50)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing functions (lambda:ListFunctions): %w", err)
		}
		for _, c := range page.Functions {
			if keep(aws.ToString(c.FunctionName)) {
				fns = append(fns, fromConfiguration(c))
			}
		}
	}
	return fns, nil
}

// stackFunctions returns the physical names of the Lambda functions of a stack (all pages).
func (r *run) stackFunctions(ctx context.Context, stack string) (map[string]bool, error) {
	names := map[string]bool{}
	p := cloudformation.NewListStackResourcesPaginator(r.cfn, &cloudformation.ListStackResourcesInput{StackName: aws.String(stack)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			var api smithy.APIError
			if errors.As(err, &api) && api.ErrorCode() == "ValidationError" && strings.Contains(api.ErrorMessage(), "does not exist") {
				return nil, &StackNotFoundError{Stack: stack, Err: err}
			}
			return nil, fmt.Errorf("listing the resources of stack %s (cloudformation:ListStackResources): %w", stack, err)
		}
		for _, s := range page.StackResourceSummaries {
			if aws.ToString(s.ResourceType) == "AWS::Lambda::Function" && aws.ToString(s.PhysicalResourceId) != "" {
				names[nameOf(aws.ToString(s.PhysicalResourceId))] = true
			}
		}
	}
	return names, nil
}

// nameOf is the function name in a name, partial ARN (ACCOUNT:function:NAME) or ARN, without qualifier.
func nameOf(ref string) string {
	parts := strings.Split(ref, ":")
	for i, p := range parts {
		if p == "function" && i+1 < len(parts) {
			return parts[i+1]
		}
	}
	return ref
}

func errorCode(err error) string {
	var api smithy.APIError
	if errors.As(err, &api) {
		return api.ErrorCode()
	}
	return err.Error()
}
