package detect

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
)

// VPCMode says what to do with functions attached to a VPC (`--vpc`).
type VPCMode string

// VPC modes.
const (
	VPCCheck VPCMode = "check" // skip those whose subnets have no NAT route to the internet
	VPCSkip  VPCMode = "skip"  // skip them all
	VPCAllow VPCMode = "allow" // skip none
)

// ParseVPCMode reads the value of --vpc.
func ParseVPCMode(s string) (VPCMode, error) {
	switch m := VPCMode(s); m {
	case VPCCheck, VPCSkip, VPCAllow:
		return m, nil
	}
	return "", fmt.Errorf("unknown mode %q (want check, skip or allow)", s)
}

// RouteIsNATEgress reports whether r sends internet-bound IPv4 traffic (0.0.0.0/0) through a NAT gateway or a NAT
// instance, and is active. A route to an internet gateway is no egress for Lambda: its network interfaces have
// no public IP, so only NAT carries their traffic out.
func RouteIsNATEgress(r ec2types.Route) bool {
	if aws.ToString(r.DestinationCidrBlock) != "0.0.0.0/0" {
		return false
	}
	if r.State != "" && r.State != ec2types.RouteStateActive {
		return false
	}
	return aws.ToString(r.NatGatewayId) != "" || aws.ToString(r.InstanceId) != ""
}

// TableHasNATEgress reports whether one of t's routes is NAT egress.
func TableHasNATEgress(t ec2types.RouteTable) bool {
	return slices.ContainsFunc(t.Routes, RouteIsNATEgress)
}

// TableForSubnet is the route table that serves subnet: the table explicitly associated with it, else the main
// table of vpcID. It returns false when tables hold neither.
func TableForSubnet(subnet, vpcID string, tables []ec2types.RouteTable) (ec2types.RouteTable, bool) {
	if t, ok := explicitTable(subnet, tables); ok {
		return t, true
	}
	for _, t := range tables {
		if aws.ToString(t.VpcId) == vpcID && slices.ContainsFunc(t.Associations, func(a ec2types.RouteTableAssociation) bool {
			return aws.ToBool(a.Main)
		}) {
			return t, true
		}
	}
	return ec2types.RouteTable{}, false
}

// explicitTable is the table explicitly associated with subnet.
func explicitTable(subnet string, tables []ec2types.RouteTable) (ec2types.RouteTable, bool) {
	for _, t := range tables {
		for _, a := range t.Associations {
			if aws.ToString(a.SubnetId) == subnet {
				return t, true
			}
		}
	}
	return ec2types.RouteTable{}, false
}

// Egress decides whether a function attached to subnets of vpcID can reach the internet, and so a tunnel
// server. Lambda places the function's network interfaces in all its subnets and any invocation may run in any
// of them, so every subnet must route 0.0.0.0/0 through NAT: one without NAT would make some invocations fail.
// It returns the subnets that have no such route (no route table counts as none).
func Egress(subnets []string, vpcID string, tables []ec2types.RouteTable) (ok bool, without []string) {
	for _, s := range subnets {
		t, found := TableForSubnet(s, vpcID, tables)
		if !found || !TableHasNATEgress(t) {
			without = append(without, s)
		}
	}
	return len(subnets) > 0 && len(without) == 0, without
}

// EC2API is the part of the EC2 client detect uses.
type EC2API interface {
	ec2.DescribeRouteTablesAPIClient
	ec2.DescribeVpcsAPIClient
	ec2.DescribeSecurityGroupsAPIClient
}

// maxFilterValues is how many values one EC2 filter takes.
const maxFilterValues = 200

// routeTables reads the route tables serving the subnets of VPC functions, once for all of them.
type routeTables struct {
	ec2    EC2API
	tables []ec2types.RouteTable
	seen   map[string]bool // route table IDs in tables
	done   map[string]bool // subnets already looked up
}

func newRouteTables(api EC2API) *routeTables {
	return &routeTables{ec2: api, seen: map[string]bool{}, done: map[string]bool{}}
}

// load reads the tables of subnets (subnet ID → VPC ID) not read yet: those explicitly associated with them,
// then the main tables of the VPCs of the subnets that have none.
func (rt *routeTables) load(ctx context.Context, subnets map[string]string) error {
	var want []string
	for _, s := range slices.Sorted(maps.Keys(subnets)) {
		if !rt.done[s] {
			want = append(want, s)
		}
	}
	if len(want) == 0 {
		return nil
	}
	for chunk := range slices.Chunk(want, maxFilterValues) {
		if err := rt.describe(ctx, ec2types.Filter{Name: aws.String("association.subnet-id"), Values: chunk}); err != nil {
			return err
		}
	}
	var vpcs []string
	for _, s := range want {
		if _, ok := explicitTable(s, rt.tables); !ok && !slices.Contains(vpcs, subnets[s]) {
			vpcs = append(vpcs, subnets[s])
		}
	}
	for chunk := range slices.Chunk(vpcs, maxFilterValues) {
		if err := rt.describe(ctx, ec2types.Filter{Name: aws.String("vpc-id"), Values: chunk},
			ec2types.Filter{Name: aws.String("association.main"), Values: []string{"true"}}); err != nil {
			return err
		}
	}
	for _, s := range want {
		rt.done[s] = true
	}
	return nil
}

func (rt *routeTables) describe(ctx context.Context, filters ...ec2types.Filter) error {
	p := ec2.NewDescribeRouteTablesPaginator(rt.ec2, &ec2.DescribeRouteTablesInput{Filters: filters})
	return eachPage(ctx, p, "route tables (ec2:DescribeRouteTables)", func(page *ec2.DescribeRouteTablesOutput) {
		for _, t := range page.RouteTables {
			if id := aws.ToString(t.RouteTableId); !rt.seen[id] {
				rt.seen[id] = true
				rt.tables = append(rt.tables, t)
			}
		}
	})
}

// pager is an EC2 paginator returning pages of type O.
type pager[O any] interface {
	HasMorePages() bool
	NextPage(context.Context, ...func(*ec2.Options)) (O, error)
}

// eachPage reads every page of p, handing each to f; what names the call in an error.
func eachPage[O any](ctx context.Context, p pager[O], what string, f func(O)) error {
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("reading %s: %w", what, err)
		}
		f(page)
	}
	return nil
}

// describeByID reads the EC2 objects ids name with the paginators newPager makes, filtered by filterName, 200
// values per call, every page; an ID that does not exist is absent from the answer. what names the call in errors.
func describeByID[O, T any](ctx context.Context, ids []string, filterName, what string, newPager func(ec2types.Filter) pager[O],
	items func(O) []T, idOf func(T) *string) (map[string]T, error) {
	out := map[string]T{}
	for chunk := range slices.Chunk(ids, maxFilterValues) {
		if err := eachPage(ctx, newPager(ec2types.Filter{Name: aws.String(filterName), Values: chunk}), what, func(page O) {
			for _, x := range items(page) {
				out[aws.ToString(idOf(x))] = x
			}
		}); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func describeVpcs(ctx context.Context, api EC2API, ids []string) (map[string]ec2types.Vpc, error) {
	return describeByID(ctx, ids, "vpc-id", "VPCs (ec2:DescribeVpcs)",
		func(f ec2types.Filter) pager[*ec2.DescribeVpcsOutput] {
			return ec2.NewDescribeVpcsPaginator(api, &ec2.DescribeVpcsInput{Filters: []ec2types.Filter{f}})
		},
		func(o *ec2.DescribeVpcsOutput) []ec2types.Vpc { return o.Vpcs },
		func(v ec2types.Vpc) *string { return v.VpcId })
}

func describeSecurityGroups(ctx context.Context, api EC2API, ids []string) (map[string]ec2types.SecurityGroup, error) {
	return describeByID(ctx, ids, "group-id", "security groups (ec2:DescribeSecurityGroups)",
		func(f ec2types.Filter) pager[*ec2.DescribeSecurityGroupsOutput] {
			return ec2.NewDescribeSecurityGroupsPaginator(api, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{f}})
		},
		func(o *ec2.DescribeSecurityGroupsOutput) []ec2types.SecurityGroup { return o.SecurityGroups },
		func(g ec2types.SecurityGroup) *string { return g.GroupId })
}

// isDenied reports an IAM refusal: EC2 answers UnauthorizedOperation, other services AccessDenied(Exception).
func isDenied(err error) bool {
	var api smithy.APIError
	if !errors.As(err, &api) {
		return false
	}
	switch api.ErrorCode() {
	case "UnauthorizedOperation", "AccessDenied", "AccessDeniedException":
		return true
	}
	return false
}
