package detect

import (
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

func route(dest string, target func(*ec2types.Route), state ec2types.RouteState) ec2types.Route {
	r := ec2types.Route{DestinationCidrBlock: aws.String(dest), State: state}
	target(&r)
	return r
}

func nat(r *ec2types.Route)      { r.NatGatewayId = aws.String("nat-1") }
func instance(r *ec2types.Route) { r.InstanceId = aws.String("i-nat") }
func igw(r *ec2types.Route)      { r.GatewayId = aws.String("igw-1") }
func local(r *ec2types.Route)    { r.GatewayId = aws.String("local") }
func tgw(r *ec2types.Route)      { r.TransitGatewayId = aws.String("tgw-1") }
func eni(r *ec2types.Route)      { r.NetworkInterfaceId = aws.String("eni-1") }

func TestRouteIsNATEgress(t *testing.T) {
	active, blackhole := ec2types.RouteStateActive, ec2types.RouteStateBlackhole
	tests := []struct {
		name  string
		route ec2types.Route
		want  bool
	}{
		{"NAT gateway, default route", route("0.0.0.0/0", nat, active), true},
		{"NAT instance, default route", route("0.0.0.0/0", instance, active), true},
		{"state not reported", route("0.0.0.0/0", nat, ""), true},
		{"NAT gateway, blackhole", route("0.0.0.0/0", nat, blackhole), false},
		{"internet gateway: no public IP on Lambda's interfaces", route("0.0.0.0/0", igw, active), false},
		{"NAT gateway, narrower destination", route("10.0.0.0/8", nat, active), false},
		{"NAT gateway, half the internet", route("0.0.0.0/1", nat, active), false},
		{"local route", route("10.0.0.0/16", local, active), false},
		{"transit gateway: egress unknown", route("0.0.0.0/0", tgw, active), false},
		{"network interface only: appliance unknown", route("0.0.0.0/0", eni, active), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := RouteIsNATEgress(tt.route); got != tt.want {
				t.Errorf("RouteIsNATEgress = %v, want %v", got, tt.want)
			}
		})
	}
}

func table(id, vpc string, main bool, subnets []string, routes ...ec2types.Route) ec2types.RouteTable {
	t := ec2types.RouteTable{RouteTableId: aws.String(id), VpcId: aws.String(vpc), Routes: routes}
	if main {
		t.Associations = append(t.Associations, ec2types.RouteTableAssociation{Main: aws.Bool(true)})
	}
	for _, s := range subnets {
		t.Associations = append(t.Associations, ec2types.RouteTableAssociation{Main: aws.Bool(false), SubnetId: aws.String(s)})
	}
	return t
}

func TestEgress(t *testing.T) {
	active := ec2types.RouteStateActive
	natRoute := route("0.0.0.0/0", nat, active)
	igwRoute := route("0.0.0.0/0", igw, active)
	tables := []ec2types.RouteTable{
		table("rtb-main-1", "vpc-1", true, nil, route("10.0.0.0/16", local, active), igwRoute),
		table("rtb-private", "vpc-1", false, []string{"subnet-a", "subnet-b"}, natRoute),
		table("rtb-public", "vpc-1", false, []string{"subnet-pub"}, igwRoute),
		table("rtb-main-2", "vpc-2", true, nil, route("0.0.0.0/0", instance, active)),
		table("rtb-dead", "vpc-1", false, []string{"subnet-dead"}, route("0.0.0.0/0", nat, ec2types.RouteStateBlackhole)),
	}
	tests := []struct {
		name    string
		subnets []string
		vpc     string
		want    bool
		without []string
	}{
		{"every subnet routes through NAT", []string{"subnet-a", "subnet-b"}, "vpc-1", true, nil},
		{"one subnet with an internet gateway only", []string{"subnet-a", "subnet-pub"}, "vpc-1", false, []string{"subnet-pub"}},
		{"no explicit association: main table, internet gateway", []string{"subnet-c"}, "vpc-1", false, []string{"subnet-c"}},
		{"no explicit association: main table, NAT instance", []string{"subnet-x"}, "vpc-2", true, nil},
		{"explicit table wins over a main table with NAT", []string{"subnet-pub"}, "vpc-2", false, []string{"subnet-pub"}},
		{"blackholed NAT route", []string{"subnet-dead"}, "vpc-1", false, []string{"subnet-dead"}},
		{"no table known at all", []string{"subnet-z"}, "vpc-9", false, []string{"subnet-z"}},
		{"no subnet", nil, "vpc-1", false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, without := Egress(tt.subnets, tt.vpc, tables)
			if got != tt.want || !slices.Equal(without, tt.without) {
				t.Errorf("Egress(%v, %s) = %v, %v; want %v, %v", tt.subnets, tt.vpc, got, without, tt.want, tt.without)
			}
		})
	}
}

func TestParseVPCMode(t *testing.T) {
	for _, s := range []string{"check", "skip", "allow"} {
		if m, err := ParseVPCMode(s); err != nil || string(m) != s {
			t.Errorf("ParseVPCMode(%q) = %q, %v", s, m, err)
		}
	}
	for _, s := range []string{"", "Check", "deny"} {
		if _, err := ParseVPCMode(s); err == nil {
			t.Errorf("ParseVPCMode(%q) succeeded", s)
		}
	}
}
