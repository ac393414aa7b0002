package detect

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// This file holds the decisions for a tunnel server inside the functions' VPC (`--tunnel-host PRIVATE`): which
// VPC holds the server's address, and whether the functions' security groups let them reach its tunnel ports.

// PortRange is an inclusive range of TCP ports.
type PortRange struct{ Min, Max int }

func (r PortRange) String() string {
	if r.Min == r.Max {
		return strconv.Itoa(r.Min)
	}
	return fmt.Sprintf("%d-%d", r.Min, r.Max)
}

// DefaultTunnelPorts are the public ports a bore server hands out unless started with other --min-port and
// --max-port: bore's default range, and `stptunnel bore server`'s. A function must be able to reach all of them,
// since the server picks one at random for each tunnel.
var DefaultTunnelPorts = PortRange{Min: 1024, Max: 65535}

// sharedAddressSpace is RFC 6598's 100.64.0.0/10, which a VPC may use (as a secondary block, typically).
var sharedAddressSpace = netip.MustParsePrefix("100.64.0.0/10")

// PrivateIPv4 returns host as an address when it is a private IPv4 address: RFC 1918 (10/8, 172.16/12,
// 192.168/16) or RFC 6598 (100.64/10). Such an address is reached only from inside its network — from a Lambda
// function, only when the function is attached to the VPC that holds it. A name is not resolved: detect sees
// names as the developer's machine does, not as the VPC's resolver would.
func PrivateIPv4(host string) (netip.Addr, bool) {
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	addr = addr.Unmap()
	return addr, addr.Is4() && (addr.IsPrivate() || sharedAddressSpace.Contains(addr))
}

// VPCBlocks returns the IPv4 CIDR blocks of v: the primary block and those associated with it (state associated).
func VPCBlocks(v ec2types.Vpc) []netip.Prefix {
	var blocks []netip.Prefix
	add := func(s string) {
		if p, err := netip.ParsePrefix(s); err == nil && !slices.Contains(blocks, p.Masked()) {
			blocks = append(blocks, p.Masked())
		}
	}
	add(aws.ToString(v.CidrBlock))
	for _, a := range v.CidrBlockAssociationSet {
		if a.CidrBlockState == nil || a.CidrBlockState.State == ec2types.VpcCidrBlockStateCodeAssociated {
			add(aws.ToString(a.CidrBlock))
		}
	}
	return blocks
}

// VPCHolds reports whether one of v's IPv4 blocks holds addr: traffic to addr from inside v then follows the VPC's
// local route, with no NAT.
func VPCHolds(v ec2types.Vpc, addr netip.Addr) bool {
	return slices.ContainsFunc(VPCBlocks(v), func(p netip.Prefix) bool { return p.Contains(addr) })
}

// EgressPorts returns the TCP ports to addr that the egress rules of groups allow together (a network interface
// with several groups may send what any of them allows), as sorted disjoint ranges. A rule counts when its
// protocol is all traffic (-1) or TCP (tcp, 6) and one of its IPv4 ranges holds addr. A rule whose destination is
// another security group or a prefix list counts as allowing its ports: whether the server is a member is not
// read (it would take a call per group or list), so detect stays silent rather than warn wrongly.
func EgressPorts(groups []ec2types.SecurityGroup, addr netip.Addr) []PortRange {
	var allowed []PortRange
	for _, g := range groups {
		for _, p := range g.IpPermissionsEgress {
			ports, ok := tcpPorts(p)
			if ok && reaches(p, addr) {
				allowed = append(allowed, ports)
			}
		}
	}
	return mergeRanges(allowed)
}

// tcpPorts is the TCP port range rule p applies to, if it applies to TCP.
func tcpPorts(p ec2types.IpPermission) (PortRange, bool) {
	switch strings.ToLower(aws.ToString(p.IpProtocol)) {
	case "-1", "all":
		return PortRange{Min: 0, Max: 65535}, true
	case "tcp", "6":
		if p.FromPort == nil || p.ToPort == nil || aws.ToInt32(p.FromPort) == -1 {
			return PortRange{Min: 0, Max: 65535}, true
		}
		return PortRange{Min: int(aws.ToInt32(p.FromPort)), Max: int(aws.ToInt32(p.ToPort))}, true
	}
	return PortRange{}, false
}

// reaches reports whether rule p's destinations may include addr.
func reaches(p ec2types.IpPermission, addr netip.Addr) bool {
	if len(p.UserIdGroupPairs) > 0 || len(p.PrefixListIds) > 0 {
		return true
	}
	return slices.ContainsFunc(p.IpRanges, func(r ec2types.IpRange) bool {
		prefix, err := netip.ParsePrefix(aws.ToString(r.CidrIp))
		return err == nil && prefix.Contains(addr)
	})
}

// mergeRanges sorts ranges and joins those that overlap or touch.
func mergeRanges(ranges []PortRange) []PortRange {
	slices.SortFunc(ranges, func(a, b PortRange) int { return cmp.Or(cmp.Compare(a.Min, b.Min), cmp.Compare(a.Max, b.Max)) })
	var out []PortRange
	for _, r := range ranges {
		if n := len(out); n > 0 && r.Min <= out[n-1].Max+1 {
			out[n-1].Max = max(out[n-1].Max, r.Max)
			continue
		}
		out = append(out, r)
	}
	return out
}

// Covers reports whether the merged ranges allowed hold every port of want.
func Covers(allowed []PortRange, want PortRange) bool {
	return slices.ContainsFunc(allowed, func(r PortRange) bool { return r.Min <= want.Min && want.Max <= r.Max })
}

// formatRanges writes ranges for a message: "5432, 20000-20100".
func formatRanges(ranges []PortRange) string {
	parts := make([]string, len(ranges))
	for i, r := range ranges {
		parts[i] = r.String()
	}
	return strings.Join(parts, ", ")
}

// groupNames names groups for a message: "sg-1 (lambda), sg-2".
func groupNames(groups []ec2types.SecurityGroup) string {
	parts := make([]string, len(groups))
	for i, g := range groups {
		id, name := aws.ToString(g.GroupId), aws.ToString(g.GroupName)
		parts[i] = id
		if name != "" && name != id {
			parts[i] += " (" + name + ")"
		}
	}
	return strings.Join(parts, ", ")
}
