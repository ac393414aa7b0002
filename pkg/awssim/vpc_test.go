package awssim_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/stptunnel/stptunnel/pkg/awssim"
)

func filter(name string, values ...string) ec2types.Filter {
	return ec2types.Filter{Name: aws.String(name), Values: values}
}

func apiCode(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return fmt.Sprint(err)
}

func TestDescribeVpcs(t *testing.T) {
	s := newServer(t, awssim.Options{})
	s.PutVPC(awssim.VPC{ID: "vpc-1", CidrBlock: "10.0.0.0/16", AssociatedCidrBlocks: []string{"100.64.0.0/16", "10.1.0.0/16"}})
	s.PutVPC(awssim.VPC{ID: "vpc-2", CidrBlock: "172.31.0.0/16", IsDefault: true})
	c := newClients(s).ec2

	out, err := c.DescribeVpcs(ctxT(t), &ec2.DescribeVpcsInput{VpcIds: []string{"vpc-1"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Vpcs) != 1 {
		t.Fatalf("vpcs %+v", out.Vpcs)
	}
	v := out.Vpcs[0]
	if aws.ToString(v.VpcId) != "vpc-1" || aws.ToString(v.CidrBlock) != "10.0.0.0/16" || v.State != ec2types.VpcStateAvailable ||
		aws.ToString(v.OwnerId) != "123456789012" || aws.ToBool(v.IsDefault) {
		t.Errorf("vpc %+v", v)
	}
	var blocks []string
	for _, a := range v.CidrBlockAssociationSet {
		if a.CidrBlockState == nil || a.CidrBlockState.State != ec2types.VpcCidrBlockStateCodeAssociated || aws.ToString(a.AssociationId) == "" {
			t.Errorf("association %+v", a)
		}
		blocks = append(blocks, aws.ToString(a.CidrBlock))
	}
	if want := []string{"10.0.0.0/16", "100.64.0.0/16", "10.1.0.0/16"}; !slices.Equal(blocks, want) {
		t.Errorf("cidrBlockAssociationSet %v, want %v (the primary first)", blocks, want)
	}

	for _, tc := range []struct {
		name string
		in   ec2.DescribeVpcsInput
		want []string
	}{
		{"all", ec2.DescribeVpcsInput{}, []string{"vpc-1", "vpc-2"}},
		{"vpc-id filter, one missing", ec2.DescribeVpcsInput{Filters: []ec2types.Filter{filter("vpc-id", "vpc-2", "vpc-gone")}}, []string{"vpc-2"}},
		{"cidr is the primary only", ec2.DescribeVpcsInput{Filters: []ec2types.Filter{filter("cidr", "100.64.0.0/16")}}, nil},
		{"any associated block", ec2.DescribeVpcsInput{Filters: []ec2types.Filter{filter("cidr-block-association.cidr-block", "100.64.0.0/16")}}, []string{"vpc-1"}},
		{"default", ec2.DescribeVpcsInput{Filters: []ec2types.Filter{filter("is-default", "true")}}, []string{"vpc-2"}},
	} {
		out, err := c.DescribeVpcs(ctxT(t), &tc.in)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		var ids []string
		for _, v := range out.Vpcs {
			ids = append(ids, aws.ToString(v.VpcId))
		}
		if !slices.Equal(ids, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, ids, tc.want)
		}
	}

	if _, err := c.DescribeVpcs(ctxT(t), &ec2.DescribeVpcsInput{VpcIds: []string{"vpc-1", "vpc-gone"}}); apiCode(err) != "InvalidVpcID.NotFound" ||
		!strings.Contains(err.Error(), "The vpc ID 'vpc-gone' does not exist") {
		t.Errorf("missing VPC: %v", err)
	}
	if _, err := c.DescribeVpcs(ctxT(t), &ec2.DescribeVpcsInput{Filters: []ec2types.Filter{filter("owner", "x")}}); apiCode(err) != "InvalidParameterValue" {
		t.Errorf("bad filter: %v", err)
	}
}

func TestDescribeVpcsPages(t *testing.T) {
	s := newServer(t, awssim.Options{})
	for i := range 12 {
		s.PutVPC(awssim.VPC{ID: fmt.Sprintf("vpc-%02d", i), CidrBlock: fmt.Sprintf("10.%d.0.0/16", i)})
	}
	var sizes []int
	p := ec2.NewDescribeVpcsPaginator(newClients(s).ec2, &ec2.DescribeVpcsInput{MaxResults: aws.Int32(5)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(page.Vpcs))
	}
	if fmt.Sprint(sizes) != "[5 5 2]" {
		t.Errorf("page sizes %v", sizes)
	}
	// DescribeVpcs takes up to 1000 per page, where DescribeRouteTables stops at 100.
	if _, err := newClients(s).ec2.DescribeVpcs(ctxT(t), &ec2.DescribeVpcsInput{MaxResults: aws.Int32(1000)}); err != nil {
		t.Errorf("MaxResults 1000: %v", err)
	}
	if _, err := newClients(s).ec2.DescribeVpcs(ctxT(t), &ec2.DescribeVpcsInput{MaxResults: aws.Int32(1001)}); apiCode(err) != "InvalidParameterValue" {
		t.Errorf("MaxResults 1001: %v", err)
	}
}

func TestDescribeSecurityGroups(t *testing.T) {
	s := newServer(t, awssim.Options{})
	s.PutSecurityGroup(awssim.SecurityGroup{ID: "sg-default", VpcID: "vpc-1"}) // the egress EC2 gives a new group
	s.PutSecurityGroup(awssim.SecurityGroup{ID: "sg-lambda", Name: "lambda", Description: "functions", VpcID: "vpc-1",
		Ingress: []awssim.Permission{{Protocol: "tcp", FromPort: 443, ToPort: 443, CIDRs: []string{"10.0.0.0/16"}}},
		Egress: []awssim.Permission{
			{Protocol: "tcp", FromPort: 5432, ToPort: 5432, CIDRs: []string{"10.0.0.0/16", "2001:db8::/56"}, Groups: []string{"sg-db"}},
			{Protocol: "-1", PrefixLists: []string{"pl-6ea54007"}},
		}})
	s.PutSecurityGroup(awssim.SecurityGroup{ID: "sg-closed", VpcID: "vpc-2", Egress: []awssim.Permission{}})
	c := newClients(s).ec2

	out, err := c.DescribeSecurityGroups(ctxT(t), &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{filter("group-id", "sg-lambda", "sg-default", "sg-gone")}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.SecurityGroups) != 2 {
		t.Fatalf("groups %+v", out.SecurityGroups)
	}
	def, lambda := out.SecurityGroups[0], out.SecurityGroups[1]
	if aws.ToString(def.GroupName) != "sg-default" || len(def.IpPermissionsEgress) != 1 ||
		aws.ToString(def.IpPermissionsEgress[0].IpProtocol) != "-1" || def.IpPermissionsEgress[0].FromPort != nil ||
		len(def.IpPermissionsEgress[0].IpRanges) != 1 || aws.ToString(def.IpPermissionsEgress[0].IpRanges[0].CidrIp) != "0.0.0.0/0" {
		t.Errorf("a group seeded without egress: %+v", def.IpPermissionsEgress)
	}
	if aws.ToString(lambda.GroupName) != "lambda" || aws.ToString(lambda.VpcId) != "vpc-1" || aws.ToString(lambda.Description) != "functions" ||
		!strings.HasSuffix(aws.ToString(lambda.SecurityGroupArn), ":security-group/sg-lambda") || len(lambda.IpPermissions) != 1 {
		t.Errorf("group %+v", lambda)
	}
	if len(lambda.IpPermissionsEgress) != 2 {
		t.Fatalf("egress %+v", lambda.IpPermissionsEgress)
	}
	tcp, all := lambda.IpPermissionsEgress[0], lambda.IpPermissionsEgress[1]
	if aws.ToString(tcp.IpProtocol) != "tcp" || aws.ToInt32(tcp.FromPort) != 5432 || aws.ToInt32(tcp.ToPort) != 5432 ||
		len(tcp.IpRanges) != 1 || aws.ToString(tcp.IpRanges[0].CidrIp) != "10.0.0.0/16" ||
		len(tcp.Ipv6Ranges) != 1 || aws.ToString(tcp.Ipv6Ranges[0].CidrIpv6) != "2001:db8::/56" ||
		len(tcp.UserIdGroupPairs) != 1 || aws.ToString(tcp.UserIdGroupPairs[0].GroupId) != "sg-db" {
		t.Errorf("tcp rule %+v", tcp)
	}
	if aws.ToString(all.IpProtocol) != "-1" || all.FromPort != nil || len(all.PrefixListIds) != 1 ||
		aws.ToString(all.PrefixListIds[0].PrefixListId) != "pl-6ea54007" {
		t.Errorf("all-traffic rule %+v", all)
	}

	closed, err := c.DescribeSecurityGroups(ctxT(t), &ec2.DescribeSecurityGroupsInput{GroupIds: []string{"sg-closed"}})
	if err != nil || len(closed.SecurityGroups) != 1 || len(closed.SecurityGroups[0].IpPermissionsEgress) != 0 {
		t.Errorf("a group seeded with no egress: %v %+v", err, closed)
	}
	byVPC, err := c.DescribeSecurityGroups(ctxT(t), &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{filter("vpc-id", "vpc-1")}})
	if err != nil || len(byVPC.SecurityGroups) != 2 {
		t.Errorf("by vpc: %v %+v", err, byVPC)
	}
	byName, err := c.DescribeSecurityGroups(ctxT(t), &ec2.DescribeSecurityGroupsInput{GroupNames: []string{"lambda"}})
	if err != nil || len(byName.SecurityGroups) != 1 || aws.ToString(byName.SecurityGroups[0].GroupId) != "sg-lambda" {
		t.Errorf("by name: %v %+v", err, byName)
	}
	for _, in := range []ec2.DescribeSecurityGroupsInput{{GroupIds: []string{"sg-gone"}}, {GroupNames: []string{"gone"}}} {
		if _, err := c.DescribeSecurityGroups(ctxT(t), &in); apiCode(err) != "InvalidGroup.NotFound" {
			t.Errorf("%+v: %v, want InvalidGroup.NotFound", in, err)
		}
	}

	// Pages of 5.
	for i := range 9 {
		s.PutSecurityGroup(awssim.SecurityGroup{ID: fmt.Sprintf("sg-%02d", i), VpcID: "vpc-3"})
	}
	var sizes []int
	p := ec2.NewDescribeSecurityGroupsPaginator(c, &ec2.DescribeSecurityGroupsInput{MaxResults: aws.Int32(5)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(page.SecurityGroups))
	}
	if fmt.Sprint(sizes) != "[5 5 2]" {
		t.Errorf("page sizes %v", sizes)
	}
}

func TestSeedVPCsAndGroups(t *testing.T) {
	good := `{"vpcs": [{"id": "vpc-1", "cidrBlock": "10.0.0.0/16", "associatedCidrBlocks": ["100.64.0.0/16"]}],
	 "securityGroups": [{"id": "sg-1", "vpcId": "vpc-1", "egress": [{"protocol": "tcp", "fromPort": 1024, "toPort": 65535, "cidrs": ["10.0.0.0/16"]}]},
	                    {"id": "sg-2", "vpcId": "vpc-1"}]}`
	seed, err := awssim.LoadSeed(strings.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	if len(seed.VPCs) != 1 || len(seed.SecurityGroups) != 2 || seed.SecurityGroups[1].Egress != nil {
		t.Errorf("seed %+v", seed)
	}
	for _, bad := range []struct{ seed, want string }{
		{`{"vpcs": [{"id": "vpc-1", "cidrBlock": "10.0.0.0"}]}`, `vpcs[0]: vpc-1: "10.0.0.0" is not an IPv4 CIDR block`},
		{`{"vpcs": [{"id": "vpc-1", "cidrBlock": "10.0.0.0/16", "associatedCidrBlocks": ["2001:db8::/56"]}]}`, "not an IPv4 CIDR block"},
		{`{"securityGroups": [{"id": "sg-1"}]}`, "securityGroups[0]: id and vpcId are required"},
		{`{"securityGroups": [{"id": "sg-1", "vpcId": "v", "egress": [{"fromPort": 1}]}]}`, "protocol is required"},
		{`{"securityGroups": [{"id": "sg-1", "vpcId": "v", "egress": [{"protocol": "tcp", "fromPort": 9, "toPort": 1}]}]}`, "ports 9-1"},
		{`{"securityGroups": [{"id": "sg-1", "vpcId": "v", "egress": [{"protocol": "-1", "cidrs": ["nope"]}]}]}`, `"nope" is not a CIDR block`},
		{`{"securityGroups": [{"id": "sg-1", "vpcId": "v", "egres": []}]}`, "unknown field"},
	} {
		if _, err := awssim.LoadSeed(strings.NewReader(bad.seed)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: %v, want %q", bad.seed, err, bad.want)
		}
	}
}

// TestOperations: Calls counts every admitted request, Operations each SDK operation once, whatever the SDK
// retried.
func TestOperations(t *testing.T) {
	s := newServer(t, awssim.Options{})
	s.PutVPC(awssim.VPC{ID: "vpc-1", CidrBlock: "10.0.0.0/16"})
	s.SetFault("DescribeVpcs", awssim.Fault{Kind: awssim.FaultServerError, Next: 2})
	c := newClients(s).ec2
	if _, err := c.DescribeVpcs(ctxT(t), &ec2.DescribeVpcsInput{}); err != nil {
		t.Fatalf("the third attempt should succeed: %v", err)
	}
	if _, err := c.DescribeVpcs(ctxT(t), &ec2.DescribeVpcsInput{}); err != nil {
		t.Fatal(err)
	}
	if calls, ops := s.Calls("DescribeVpcs"), s.Operations("DescribeVpcs"); calls != 4 || ops != 2 {
		t.Errorf("Calls %d, Operations %d; want 4 requests for 2 operations", calls, ops)
	}
	// A request without the SDK's invocation ID counts alone.
	for range 2 {
		resp, err := http.PostForm(s.URL(), url.Values{"Action": {"DescribeVpcs"}, "Version": {"2016-11-15"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if ops := s.Operations("DescribeVpcs"); ops != 4 {
		t.Errorf("Operations %d after two plain requests, want 4", ops)
	}
}
