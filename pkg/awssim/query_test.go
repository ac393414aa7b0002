package awssim_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/stptunnel/stptunnel/pkg/awssim"
)

func TestListStackResources(t *testing.T) {
	s := newServer(t, awssim.Options{})
	var resources []awssim.StackResource
	for i := range 250 {
		resources = append(resources, awssim.StackResource{LogicalID: fmt.Sprintf("Fn%03d", i), PhysicalID: fmt.Sprintf("app-fn-%03d", i), Type: "AWS::Lambda::Function"})
	}
	resources = append(resources, awssim.StackResource{LogicalID: "Bucket", PhysicalID: "app-bucket", Type: "AWS::S3::Bucket", Status: "UPDATE_COMPLETE"})
	s.PutStack("app", awssim.Stack{Resources: resources})
	c := newClients(s).cfn

	for _, ref := range []string{"app", "arn:aws:cloudformation:eu-west-1:123456789012:stack/app/0f1e2d3c-4b5a-6978-8695-a4b3c2d1e0f9"} {
		var sizes []int
		var got []string
		p := cloudformation.NewListStackResourcesPaginator(c, &cloudformation.ListStackResourcesInput{StackName: aws.String(ref)})
		for p.HasMorePages() {
			page, err := p.NextPage(ctxT(t))
			if err != nil {
				t.Fatal(err)
			}
			sizes = append(sizes, len(page.StackResourceSummaries))
			for _, r := range page.StackResourceSummaries {
				got = append(got, aws.ToString(r.PhysicalResourceId))
				if r.LastUpdatedTimestamp == nil || r.ResourceStatus == "" || aws.ToString(r.ResourceType) == "" {
					t.Errorf("summary %+v lacks required members", r)
				}
			}
		}
		if fmt.Sprint(sizes) != "[100 100 51]" {
			t.Errorf("%s: page sizes %v", ref, sizes)
		}
		if len(got) != 251 || got[0] != "app-fn-000" || got[250] != "app-bucket" {
			t.Errorf("%s: got %d resources, first %q last %q", ref, len(got), got[0], got[len(got)-1])
		}
	}

	_, err := c.ListStackResources(ctxT(t), &cloudformation.ListStackResourcesInput{StackName: aws.String("nope")})
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "ValidationError" || apiErr.ErrorMessage() != "Stack with id nope does not exist" {
		t.Errorf("missing stack: got %v", err)
	}
}

func seedNetwork(s *awssim.Server) {
	s.PutSubnet(awssim.Subnet{ID: "subnet-nat", VpcID: "vpc-1", CidrBlock: "10.0.1.0/24", AvailabilityZone: "eu-west-1a"})
	s.PutSubnet(awssim.Subnet{ID: "subnet-main", VpcID: "vpc-1", CidrBlock: "10.0.2.0/24", AvailabilityZone: "eu-west-1b"})
	s.PutSubnet(awssim.Subnet{ID: "subnet-other", VpcID: "vpc-2", CidrBlock: "10.1.0.0/24"})
	s.PutRouteTable(awssim.RouteTable{ID: "rtb-main", VpcID: "vpc-1", Main: true, Routes: []awssim.Route{
		{DestinationCidrBlock: "10.0.0.0/16", GatewayID: "local"},
		{DestinationCidrBlock: "0.0.0.0/0", GatewayID: "igw-1"},
	}})
	s.PutRouteTable(awssim.RouteTable{ID: "rtb-nat", VpcID: "vpc-1", Associations: []string{"subnet-nat"}, Routes: []awssim.Route{
		{DestinationCidrBlock: "0.0.0.0/0", NatGatewayID: "nat-1"},
	}})
	s.PutRouteTable(awssim.RouteTable{ID: "rtb-other", VpcID: "vpc-2", Main: true, Associations: []string{"subnet-other"}, Routes: []awssim.Route{
		{DestinationCidrBlock: "0.0.0.0/0", InstanceID: "i-0nat", State: "blackhole"},
	}})
}

func routeTableIDs(tables []ec2types.RouteTable) []string {
	var ids []string
	for _, rt := range tables {
		ids = append(ids, aws.ToString(rt.RouteTableId))
	}
	return ids
}

func TestDescribeRouteTables(t *testing.T) {
	s := newServer(t, awssim.Options{})
	seedNetwork(s)
	c := newClients(s).ec2

	filter := func(name string, values ...string) ec2types.Filter {
		return ec2types.Filter{Name: aws.String(name), Values: values}
	}
	for _, tc := range []struct {
		name    string
		in      ec2.DescribeRouteTablesInput
		wantIDs []string
	}{
		{"explicit association", ec2.DescribeRouteTablesInput{Filters: []ec2types.Filter{filter("association.subnet-id", "subnet-nat")}}, []string{"rtb-nat"}},
		{"main-table subnet matches nothing", ec2.DescribeRouteTablesInput{Filters: []ec2types.Filter{filter("association.subnet-id", "subnet-main")}}, nil},
		{"main fallback", ec2.DescribeRouteTablesInput{Filters: []ec2types.Filter{filter("vpc-id", "vpc-1"), filter("association.main", "true")}}, []string{"rtb-main"}},
		{"values OR", ec2.DescribeRouteTablesInput{Filters: []ec2types.Filter{filter("association.subnet-id", "subnet-nat", "subnet-other")}}, []string{"rtb-nat", "rtb-other"}},
		{"by vpc", ec2.DescribeRouteTablesInput{Filters: []ec2types.Filter{filter("vpc-id", "vpc-1")}}, []string{"rtb-main", "rtb-nat"}},
		{"by id", ec2.DescribeRouteTablesInput{RouteTableIds: []string{"rtb-other"}}, []string{"rtb-other"}},
		{"all", ec2.DescribeRouteTablesInput{}, []string{"rtb-main", "rtb-nat", "rtb-other"}},
	} {
		out, err := c.DescribeRouteTables(ctxT(t), &tc.in)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got := routeTableIDs(out.RouteTables); !slices.Equal(got, tc.wantIDs) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.wantIDs)
		}
	}

	out, err := c.DescribeRouteTables(ctxT(t), &ec2.DescribeRouteTablesInput{RouteTableIds: []string{"rtb-nat", "rtb-other", "rtb-main"}})
	if err != nil {
		t.Fatal(err)
	}
	main, nat, other := out.RouteTables[0], out.RouteTables[1], out.RouteTables[2]
	if len(main.Associations) != 1 || !aws.ToBool(main.Associations[0].Main) || main.Associations[0].SubnetId != nil ||
		main.Associations[0].AssociationState.State != ec2types.RouteTableAssociationStateCodeAssociated {
		t.Errorf("main associations %+v", main.Associations)
	}
	if r := main.Routes[1]; aws.ToString(r.GatewayId) != "igw-1" || r.State != ec2types.RouteStateActive || aws.ToString(r.DestinationCidrBlock) != "0.0.0.0/0" {
		t.Errorf("main igw route %+v", r)
	}
	if r := nat.Routes[0]; aws.ToString(r.NatGatewayId) != "nat-1" || r.GatewayId != nil || aws.ToString(nat.Associations[0].SubnetId) != "subnet-nat" ||
		aws.ToBool(nat.Associations[0].Main) {
		t.Errorf("nat table %+v / %+v", r, nat.Associations)
	}
	if r := other.Routes[0]; aws.ToString(r.InstanceId) != "i-0nat" || r.State != ec2types.RouteStateBlackhole || len(other.Associations) != 2 {
		t.Errorf("other table %+v", other)
	}

	for _, tc := range []struct {
		in   ec2.DescribeRouteTablesInput
		code string
	}{
		{ec2.DescribeRouteTablesInput{RouteTableIds: []string{"rtb-missing"}}, "InvalidRouteTableID.NotFound"},
		{ec2.DescribeRouteTablesInput{Filters: []ec2types.Filter{filter("bogus", "x")}}, "InvalidParameterValue"},
	} {
		_, err := c.DescribeRouteTables(ctxT(t), &tc.in)
		var apiErr smithy.APIError
		if !errors.As(err, &apiErr) || apiErr.ErrorCode() != tc.code {
			t.Errorf("got %v, want %s", err, tc.code)
		}
	}
}

func TestDescribeRouteTablesPages(t *testing.T) {
	s := newServer(t, awssim.Options{})
	for i := range 12 {
		s.PutRouteTable(awssim.RouteTable{ID: fmt.Sprintf("rtb-%02d", i), VpcID: "vpc-1"})
	}
	c := newClients(s).ec2
	var sizes []int
	p := ec2.NewDescribeRouteTablesPaginator(c, &ec2.DescribeRouteTablesInput{MaxResults: aws.Int32(5)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(page.RouteTables))
	}
	if fmt.Sprint(sizes) != "[5 5 2]" {
		t.Errorf("page sizes %v", sizes)
	}
}

func TestDescribeSubnets(t *testing.T) {
	s := newServer(t, awssim.Options{})
	seedNetwork(s)
	c := newClients(s).ec2

	out, err := c.DescribeSubnets(ctxT(t), &ec2.DescribeSubnetsInput{SubnetIds: []string{"subnet-main", "subnet-other"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Subnets) != 2 || aws.ToString(out.Subnets[0].VpcId) != "vpc-1" || aws.ToString(out.Subnets[1].VpcId) != "vpc-2" ||
		aws.ToString(out.Subnets[0].CidrBlock) != "10.0.2.0/24" || out.Subnets[0].State != ec2types.SubnetStateAvailable {
		t.Errorf("subnets %+v", out.Subnets)
	}
	byVPC, err := c.DescribeSubnets(ctxT(t), &ec2.DescribeSubnetsInput{Filters: []ec2types.Filter{{Name: aws.String("vpc-id"), Values: []string{"vpc-1"}}}})
	if err != nil || len(byVPC.Subnets) != 2 {
		t.Errorf("by vpc: %v %+v", err, byVPC)
	}
	_, err = c.DescribeSubnets(ctxT(t), &ec2.DescribeSubnetsInput{SubnetIds: []string{"subnet-nope"}})
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "InvalidSubnetID.NotFound" {
		t.Errorf("missing subnet: %v", err)
	}

	// The function's VpcId is derived from its first subnet.
	s.PutFunction(awssim.Function{Name: "worker", VPC: &awssim.VPCConfig{SubnetIDs: []string{"subnet-other"}}})
	cfg, err := newClients(s).lambda.GetFunctionConfiguration(ctxT(t), lambdaConfigInput("worker"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.VpcConfig == nil || aws.ToString(cfg.VpcConfig.VpcId) != "vpc-2" || !slices.Equal(cfg.VpcConfig.SubnetIds, []string{"subnet-other"}) {
		t.Errorf("VpcConfig %+v", cfg.VpcConfig)
	}
}
