package detect

import (
	"fmt"
	"net/netip"
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

func TestPrivateIPv4(t *testing.T) {
	for _, tt := range []struct {
		host    string
		private bool
	}{
		{"10.0.1.5", true}, {"172.16.0.1", true}, {"172.31.255.254", true}, {"192.168.1.1", true},
		{"100.64.3.4", true}, {"100.127.0.1", true}, {"::ffff:10.0.1.5", true},
		{"172.32.0.1", false}, {"100.128.0.1", false}, {"54.170.1.2", false}, {"127.0.0.1", false},
		{"fd00::1", false}, // IPv6: VPC blocks are read as IPv4 only
		{"bore.pub", false}, {"ip-10-0-1-5.eu-west-1.compute.internal", false}, {"", false},
	} {
		if _, got := PrivateIPv4(tt.host); got != tt.private {
			t.Errorf("PrivateIPv4(%q) = %v, want %v", tt.host, got, tt.private)
		}
	}
}

func vpc(primary string, associated ...string) ec2types.Vpc {
	v := ec2types.Vpc{VpcId: aws.String("vpc-1"), CidrBlock: aws.String(primary)}
	for _, c := range append([]string{primary}, associated...) {
		state := ec2types.VpcCidrBlockStateCodeAssociated
		if c == "10.9.0.0/16" {
			state = ec2types.VpcCidrBlockStateCodeDisassociated
		}
		v.CidrBlockAssociationSet = append(v.CidrBlockAssociationSet, ec2types.VpcCidrBlockAssociation{
			CidrBlock: aws.String(c), CidrBlockState: &ec2types.VpcCidrBlockState{State: state}})
	}
	return v
}

func TestVPCHolds(t *testing.T) {
	v := vpc("10.0.0.0/16", "100.64.0.0/16", "10.9.0.0/16")
	if got := fmt.Sprint(VPCBlocks(v)); got != "[10.0.0.0/16 100.64.0.0/16]" {
		t.Errorf("VPCBlocks = %s: want the primary and the associated block, not the disassociated one", got)
	}
	for _, tt := range []struct {
		addr string
		want bool
	}{
		{"10.0.1.5", true}, {"10.0.255.255", true}, {"100.64.3.4", true},
		{"10.1.0.5", false}, {"10.9.0.5", false}, {"192.168.0.1", false},
	} {
		if got := VPCHolds(v, netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("VPCHolds(%s) = %v, want %v", tt.addr, got, tt.want)
		}
	}
	// A VPC described without its association set still has its primary block.
	if !VPCHolds(ec2types.Vpc{CidrBlock: aws.String("10.0.0.0/16")}, netip.MustParseAddr("10.0.0.9")) {
		t.Error("the primary block alone does not hold 10.0.0.9")
	}
}

func rule(proto string, from, to int32, cidrs ...string) ec2types.IpPermission {
	p := ec2types.IpPermission{IpProtocol: aws.String(proto)}
	if proto != "-1" {
		p.FromPort, p.ToPort = aws.Int32(from), aws.Int32(to)
	}
	for _, c := range cidrs {
		p.IpRanges = append(p.IpRanges, ec2types.IpRange{CidrIp: aws.String(c)})
	}
	return p
}

func group(id string, egress ...ec2types.IpPermission) ec2types.SecurityGroup {
	return ec2types.SecurityGroup{GroupId: aws.String(id), GroupName: aws.String(id), IpPermissionsEgress: egress}
}

func TestEgressPorts(t *testing.T) {
	host := netip.MustParseAddr("10.0.1.5")
	toGroup := rule("tcp", 5432, 5432)
	toGroup.UserIdGroupPairs = []ec2types.UserIdGroupPair{{GroupId: aws.String("sg-server")}}
	toList := rule("-1", 0, 0)
	toList.PrefixListIds = []ec2types.PrefixListId{{PrefixListId: aws.String("pl-1")}}
	tests := []struct {
		name   string
		groups []ec2types.SecurityGroup
		want   string
		covers bool
	}{
		{"EC2's default egress: all traffic anywhere", []ec2types.SecurityGroup{group("sg-1", rule("-1", 0, 0, "0.0.0.0/0"))}, "[0-65535]", true},
		{"the tunnel range to the VPC", []ec2types.SecurityGroup{group("sg-1", rule("tcp", 1024, 65535, "10.0.0.0/16"))}, "[1024-65535]", true},
		{"only the database port", []ec2types.SecurityGroup{group("sg-1", rule("tcp", 5432, 5432, "10.0.0.0/16"))}, "[5432]", false},
		{"all TCP but to another network", []ec2types.SecurityGroup{group("sg-1", rule("tcp", 0, 65535, "10.1.0.0/16"))}, "[]", false},
		{"UDP only", []ec2types.SecurityGroup{group("sg-1", rule("udp", 0, 65535, "0.0.0.0/0"))}, "[]", false},
		{"protocol number 6 is TCP", []ec2types.SecurityGroup{group("sg-1", rule("6", 1024, 65535, "10.0.1.5/32"))}, "[1024-65535]", true},
		{"no egress at all", []ec2types.SecurityGroup{group("sg-1")}, "[]", false},
		{"two groups together cover it", []ec2types.SecurityGroup{
			group("sg-1", rule("tcp", 1024, 30000, "10.0.0.0/8")), group("sg-2", rule("tcp", 30001, 65535, "10.0.1.0/24"), rule("tcp", 443, 443, "0.0.0.0/0"))},
			"[443 1024-65535]", true},
		{"a gap of one port", []ec2types.SecurityGroup{group("sg-1", rule("tcp", 1024, 40000, "10.0.0.0/16"), rule("tcp", 40002, 65535, "10.0.0.0/16"))},
			"[1024-40000 40002-65535]", false},
		{"a group destination is not read: counts", []ec2types.SecurityGroup{group("sg-1", toGroup)}, "[5432]", false},
		{"a prefix list is not read: counts", []ec2types.SecurityGroup{group("sg-1", toList)}, "[0-65535]", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := EgressPorts(tt.groups, host)
			if fmt.Sprint(got) != tt.want || Covers(got, DefaultTunnelPorts) != tt.covers {
				t.Errorf("EgressPorts = %v (covers %v), want %s (covers %v)", got, Covers(got, DefaultTunnelPorts), tt.want, tt.covers)
			}
		})
	}
}
