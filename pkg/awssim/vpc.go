package awssim

import (
	"encoding/xml"
	"fmt"
	"maps"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
)

// VPC is an EC2 VPC: its primary IPv4 CIDR block and the blocks associated
// with it later (AssociateVpcCidrBlock), which EC2 lists after the primary in
// cidrBlockAssociationSet.
type VPC struct {
	ID                   string   `json:"id"`
	CidrBlock            string   `json:"cidrBlock"`
	AssociatedCidrBlocks []string `json:"associatedCidrBlocks,omitempty"`
	IsDefault            bool     `json:"isDefault,omitempty"`
}

// SecurityGroup is an EC2 security group. Egress nil is the rule EC2 gives
// every new group (all traffic to 0.0.0.0/0); an empty list is no egress.
type SecurityGroup struct {
	ID          string       `json:"id"`
	Name        string       `json:"name,omitempty"` // default: the ID
	Description string       `json:"description,omitempty"`
	VpcID       string       `json:"vpcId"`
	Ingress     []Permission `json:"ingress,omitempty"`
	Egress      []Permission `json:"egress"`
}

// Permission is one rule of a security group: a protocol ("-1" for all
// traffic, "tcp", "udp", "icmp" or a protocol number), a port range
// (FromPort-ToPort; unused for "-1"), and the peers it applies to: CIDR
// blocks (IPv4 or IPv6), other security groups by ID, prefix lists by ID.
type Permission struct {
	Protocol    string   `json:"protocol"`
	FromPort    int      `json:"fromPort,omitempty"`
	ToPort      int      `json:"toPort,omitempty"`
	CIDRs       []string `json:"cidrs,omitempty"`
	Groups      []string `json:"groups,omitempty"`
	PrefixLists []string `json:"prefixLists,omitempty"`
}

// allTraffic is the egress rule of a new security group.
var allTraffic = []Permission{{Protocol: "-1", CIDRs: []string{"0.0.0.0/0"}}}

// PutVPC creates or replaces a VPC.
func (s *Server) PutVPC(v VPC) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v.AssociatedCidrBlocks = slices.Clone(v.AssociatedCidrBlocks)
	s.vpcs[v.ID] = v
}

// PutSecurityGroup creates or replaces a security group.
func (s *Server) PutSecurityGroup(g SecurityGroup) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if g.Name == "" {
		g.Name = g.ID
	}
	if g.Egress == nil {
		g.Egress = allTraffic
	}
	g.Ingress, g.Egress = clonePermissions(g.Ingress), clonePermissions(g.Egress)
	s.groups[g.ID] = g
}

func clonePermissions(ps []Permission) []Permission {
	out := make([]Permission, len(ps))
	for i, p := range ps {
		p.CIDRs, p.Groups, p.PrefixLists = slices.Clone(p.CIDRs), slices.Clone(p.Groups), slices.Clone(p.PrefixLists)
		out[i] = p
	}
	return out
}

func (v VPC) validate() error {
	if v.ID == "" {
		return fmt.Errorf("id is required")
	}
	for _, c := range append([]string{v.CidrBlock}, v.AssociatedCidrBlocks...) {
		if p, err := netip.ParsePrefix(c); err != nil || !p.Addr().Is4() {
			return fmt.Errorf("%s: %q is not an IPv4 CIDR block", v.ID, c)
		}
	}
	return nil
}

func (g SecurityGroup) validate() error {
	if g.ID == "" || g.VpcID == "" {
		return fmt.Errorf("id and vpcId are required")
	}
	for i, p := range slices.Concat(g.Ingress, g.Egress) {
		if p.Protocol == "" {
			return fmt.Errorf("%s: rule %d: protocol is required (-1 for all traffic)", g.ID, i)
		}
		if (p.Protocol == "tcp" || p.Protocol == "udp") && (p.FromPort < 0 || p.ToPort > 65535 || p.FromPort > p.ToPort) {
			return fmt.Errorf("%s: rule %d: ports %d-%d", g.ID, i, p.FromPort, p.ToPort)
		}
		for _, c := range p.CIDRs {
			if _, err := netip.ParsePrefix(c); err != nil {
				return fmt.Errorf("%s: rule %d: %q is not a CIDR block", g.ID, i, c)
			}
		}
	}
	return nil
}

func (s *Server) describeVpcs(w http.ResponseWriter, form url.Values) {
	s.mu.Lock()
	all := maps.Clone(s.vpcs)
	account := s.account
	s.mu.Unlock()
	page, next, ok := page(w, form, describe{"VpcId", "InvalidVpcID.NotFound", "The vpc ID '%s' does not exist",
		[]string{"vpc-id", "cidr", "cidr-block-association.cidr-block", "is-default", "state"}, 1000},
		all, vpcMatches)
	if !ok {
		return
	}

	type cidrBlockState struct {
		State string `xml:"state"`
	}
	type cidrAssociation struct {
		CidrBlock      string         `xml:"cidrBlock"`
		AssociationID  string         `xml:"associationId"`
		CidrBlockState cidrBlockState `xml:"cidrBlockState"`
	}
	type vpc struct {
		VpcID           string            `xml:"vpcId"`
		OwnerID         string            `xml:"ownerId"`
		State           string            `xml:"state"`
		CidrBlock       string            `xml:"cidrBlock"`
		CidrAssociation []cidrAssociation `xml:"cidrBlockAssociationSet>item"`
		DhcpOptionsID   string            `xml:"dhcpOptionsId"`
		TagSet          string            `xml:"tagSet"`
		InstanceTenancy string            `xml:"instanceTenancy"`
		IsDefault       bool              `xml:"isDefault"`
	}
	type response struct {
		XMLName   xml.Name `xml:"DescribeVpcsResponse"`
		Xmlns     string   `xml:"xmlns,attr"`
		RequestID string   `xml:"requestId"`
		Vpcs      []vpc    `xml:"vpcSet>item"`
		NextToken string   `xml:"nextToken,omitempty"`
	}
	out := response{Xmlns: ec2NS, RequestID: s.requestID(), NextToken: next}
	for _, id := range page {
		v := all[id]
		x := vpc{VpcID: v.ID, OwnerID: account, State: "available", CidrBlock: v.CidrBlock, DhcpOptionsID: "dopt-awssim",
			InstanceTenancy: "default", IsDefault: v.IsDefault}
		for i, c := range append([]string{v.CidrBlock}, v.AssociatedCidrBlocks...) {
			x.CidrAssociation = append(x.CidrAssociation, cidrAssociation{CidrBlock: c,
				AssociationID: fmt.Sprintf("vpc-cidr-assoc-%s-%d", v.ID, i), CidrBlockState: cidrBlockState{"associated"}})
		}
		out.Vpcs = append(out.Vpcs, x)
	}
	writeXML(w, http.StatusOK, out)
}

// vpcMatches applies DescribeVpcs filters: cidr matches the primary block
// exactly, cidr-block-association.cidr-block any block.
func vpcMatches(v VPC, filters map[string][]string) bool {
	for name, values := range filters {
		var ok bool
		switch name {
		case "vpc-id":
			ok = anyIn(values, v.ID)
		case "cidr":
			ok = anyIn(values, v.CidrBlock)
		case "cidr-block-association.cidr-block":
			ok = anyIn(values, append([]string{v.CidrBlock}, v.AssociatedCidrBlocks...)...)
		case "is-default":
			ok = anyIn(values, strconv.FormatBool(v.IsDefault))
		case "state":
			ok = anyIn(values, "available")
		}
		if !ok {
			return false
		}
	}
	return true
}

func (s *Server) describeSecurityGroups(w http.ResponseWriter, form url.Values) {
	s.mu.Lock()
	all := maps.Clone(s.groups)
	account, region := s.account, s.region
	s.mu.Unlock()
	names := ec2List(form, "GroupName")
	for _, n := range names {
		if !slices.ContainsFunc(slices.Collect(maps.Values(all)), func(g SecurityGroup) bool { return g.Name == n }) {
			writeEC2Error(w, apiError{status: 400, code: "InvalidGroup.NotFound", message: fmt.Sprintf("The security group '%s' does not exist", n)})
			return
		}
	}
	page, next, ok := page(w, form, describe{"GroupId", "InvalidGroup.NotFound", "The security group '%s' does not exist",
		[]string{"group-id", "group-name", "vpc-id"}, 1000},
		all, func(g SecurityGroup, filters map[string][]string) bool {
			return (len(names) == 0 || slices.Contains(names, g.Name)) &&
				(filters["group-id"] == nil || anyIn(filters["group-id"], g.ID)) &&
				(filters["group-name"] == nil || anyIn(filters["group-name"], g.Name)) &&
				(filters["vpc-id"] == nil || anyIn(filters["vpc-id"], g.VpcID))
		})
	if !ok {
		return
	}

	type securityGroup struct {
		OwnerID          string         `xml:"ownerId"`
		GroupID          string         `xml:"groupId"`
		GroupName        string         `xml:"groupName"`
		GroupDescription string         `xml:"groupDescription"`
		VpcID            string         `xml:"vpcId"`
		Ingress          []ipPermission `xml:"ipPermissions>item"`
		Egress           []ipPermission `xml:"ipPermissionsEgress>item"`
		SecurityGroupArn string         `xml:"securityGroupArn"`
		TagSet           string         `xml:"tagSet"`
	}
	type response struct {
		XMLName   xml.Name        `xml:"DescribeSecurityGroupsResponse"`
		Xmlns     string          `xml:"xmlns,attr"`
		RequestID string          `xml:"requestId"`
		Groups    []securityGroup `xml:"securityGroupInfo>item"`
		NextToken string          `xml:"nextToken,omitempty"`
	}
	out := response{Xmlns: ec2NS, RequestID: s.requestID(), NextToken: next}
	for _, id := range page {
		g := all[id]
		out.Groups = append(out.Groups, securityGroup{OwnerID: account, GroupID: g.ID, GroupName: g.Name,
			GroupDescription: g.Description, VpcID: g.VpcID, Ingress: ipPermissions(g.Ingress, account),
			Egress: ipPermissions(g.Egress, account), SecurityGroupArn: fmt.Sprintf("arn:aws:ec2:%s:%s:security-group/%s", region, account, g.ID)})
	}
	writeXML(w, http.StatusOK, out)
}

// ipPermission is a rule as DescribeSecurityGroups answers it. EC2 leaves out
// the ports of an all-traffic rule and always sends the four peer lists.
type ipPermission struct {
	IPProtocol    string         `xml:"ipProtocol"`
	FromPort      *int           `xml:"fromPort,omitempty"`
	ToPort        *int           `xml:"toPort,omitempty"`
	Groups        []groupPair    `xml:"groups>item"`
	IPRanges      []ipRange      `xml:"ipRanges>item"`
	IPv6Ranges    []ipv6Range    `xml:"ipv6Ranges>item"`
	PrefixListIDs []prefixListID `xml:"prefixListIds>item"`
}

type (
	groupPair struct {
		UserID  string `xml:"userId"`
		GroupID string `xml:"groupId"`
	}
	ipRange struct {
		CidrIP string `xml:"cidrIp"`
	}
	ipv6Range struct {
		CidrIPv6 string `xml:"cidrIpv6"`
	}
	prefixListID struct {
		PrefixListID string `xml:"prefixListId"`
	}
)

func ipPermissions(ps []Permission, account string) []ipPermission {
	var out []ipPermission
	for _, p := range ps {
		x := ipPermission{IPProtocol: p.Protocol}
		if p.Protocol != "-1" {
			x.FromPort, x.ToPort = &p.FromPort, &p.ToPort
		}
		for _, g := range p.Groups {
			x.Groups = append(x.Groups, groupPair{UserID: account, GroupID: g})
		}
		for _, c := range p.CIDRs {
			if prefix, err := netip.ParsePrefix(c); err == nil && prefix.Addr().Is6() {
				x.IPv6Ranges = append(x.IPv6Ranges, ipv6Range{c})
			} else {
				x.IPRanges = append(x.IPRanges, ipRange{c})
			}
		}
		for _, pl := range p.PrefixLists {
			x.PrefixListIDs = append(x.PrefixListIDs, prefixListID{pl})
		}
		out = append(out, x)
	}
	return out
}
