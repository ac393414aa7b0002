package detect

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/stptunnel/stptunnel/pkg/connstr"
	"github.com/stptunnel/stptunnel/pkg/doc"
	"github.com/stptunnel/stptunnel/pkg/lambdaenv"
)

// Skip reasons, as the document spells them.
const (
	reasonNotFound    = doc.ReasonNotFound
	reasonNoAccess    = doc.ReasonNoAccess
	reasonVPCNoNAT    = doc.ReasonVPCNoNAT
	reasonTooLarge    = doc.ReasonTooLarge
	reasonReservedKey = doc.ReasonReservedKey
)

// Clients are the AWS APIs detect calls.
type Clients struct {
	Lambda         LambdaAPI
	CloudFormation CloudFormationAPI
	EC2            EC2API
}

// NewClients builds the clients from an SDK configuration.
func NewClients(cfg aws.Config) Clients {
	return Clients{Lambda: lambda.NewFromConfig(cfg), CloudFormation: cloudformation.NewFromConfig(cfg), EC2: ec2.NewFromConfig(cfg)}
}

// Options are the inputs of one detection.
type Options struct {
	Region    string         // named in messages
	Resources []doc.Resource // validated, names unique
	Maps      []Map          // validated: each names a resource
	Scope     Scope
	VPC       VPCMode // "" is VPCCheck
	// Public is the longest public address a tunnel could get, as the functions will see it (the tunnel host, else
	// the longest server host, with port 65535): the patched variables are sized with it to predict Lambda's 4 KB
	// limit before anything is written.
	Public connstr.HostPort
	// TunnelHost is the host the functions will reach the bore server by (--tunnel-host, else the server's host);
	// "" means Public's. The VPC check asks whether functions can reach it.
	TunnelHost string
	// TunnelPorts are the public ports the bore server may hand out (DefaultTunnelPorts when zero): a function
	// kept because its VPC holds a private tunnel host must be allowed TCP egress to all of them.
	TunnelPorts PortRange
}

// Result is what detection found.
type Result struct {
	Functions []doc.Function // functions with at least one binding, in the order they were found
	Skipped   []doc.Skip
	Scanned   int      // functions examined (in scope and deployed)
	Warnings  []string // things the user should know that are not skips, e.g. a value a tunnel cannot carry
	// Decisions says, per function name, what env patch will do to each of its bindings (same order).
	Decisions map[string][]lambdaenv.Decision
}

type run struct {
	Options
	lambda LambdaAPI
	cfn    CloudFormationAPI
	ec2    EC2API
	routes *routeTables
	result Result
}

// Run lists the functions in scope, binds their variables to resources and decides the skips.
func Run(ctx context.Context, clients Clients, opts Options) (*Result, error) {
	if opts.VPC == "" {
		opts.VPC = VPCCheck
	}
	if opts.TunnelPorts == (PortRange{}) {
		opts.TunnelPorts = DefaultTunnelPorts
	}
	if opts.TunnelHost == "" {
		opts.TunnelHost = opts.Public.Host
	}
	r := &run{Options: opts, lambda: clients.Lambda, cfn: clients.CloudFormation, ec2: clients.EC2, routes: newRouteTables(clients.EC2)}
	fns, err := r.inScope(ctx)
	if err != nil {
		return nil, err
	}
	r.result.Scanned = len(fns)

	b := newBinder(opts.Resources, opts.Maps)
	var bound []candidate // in the order found, so that functions and skips keep it
	for _, f := range fns {
		// Bound as deployed: a function a session has patched is recognised by the values its marker records.
		f.env = lambdaenv.Deployed(f.env)
		if f.envError != nil {
			bound = append(bound, candidate{function: f, unreadable: true})
		} else if bindings := b.bind(f.env); len(bindings) > 0 {
			bound = append(bound, candidate{function: f, bindings: bindings})
		}
	}
	reachable, err := r.vpcEgress(ctx, bound)
	if err != nil {
		return nil, err
	}
	var inVPC []candidate // kept because their VPC holds the tunnel host
	for i, c := range bound {
		if c.unreadable {
			r.skip(c.name, reasonNoAccess, fmt.Sprintf(
				"cannot read its environment variables (%s): grant kms:Decrypt on its key to check it; it is never written",
				aws.ToString(c.envError.ErrorCode)))
			continue
		}
		if msg := reachable[i]; msg != "" {
			r.skip(c.name, reasonVPCNoNAT, msg)
			continue
		}
		if reason, msg := r.limits(&c); reason != "" {
			r.skip(c.name, reason, msg)
			continue
		}
		r.result.Functions = append(r.result.Functions, doc.Function{Name: c.name, ARN: c.arn, Bindings: c.bindings})
		if c.insideVPC {
			inVPC = append(inVPC, c)
		}
	}
	if err := r.securityGroups(ctx, inVPC); err != nil {
		return nil, err
	}
	return &r.result, nil
}

// candidate is a function with bindings, or whose variables cannot be read, not yet cleared of skips.
type candidate struct {
	function
	bindings   []doc.Binding
	unreadable bool
	insideVPC  bool // its VPC holds the tunnel host, a private address: no NAT needed
}

func (r *run) skip(name, reason, message string) {
	r.result.Skipped = append(r.result.Skipped, doc.Skip{Function: name, Reason: reason, Message: message})
}

// inScope returns the deployed functions the scope selects.
func (r *run) inScope(ctx context.Context) ([]function, error) {
	s := r.Scope
	if len(s.Functions) > 0 {
		return r.named(ctx, s.Functions)
	}
	var inStack map[string]bool
	if s.Stack != "" {
		var err error
		if inStack, err = r.stackFunctions(ctx, s.Stack); err != nil {
			return nil, err
		}
		if len(inStack) == 0 {
			return nil, nil // no need to list the region
		}
	}
	fns, err := r.list(ctx, func(name string) bool {
		return strings.HasPrefix(name, s.Prefix) && (inStack == nil || inStack[name])
	})
	if err != nil || inStack == nil {
		return fns, err
	}
	// A function the stack names but the region does not have (deleted by hand, or a failed deployment) would
	// otherwise vanish from the report without a word.
	deployed := map[string]bool{}
	for _, f := range fns {
		deployed[f.name] = true
	}
	for _, name := range slices.Sorted(maps.Keys(inStack)) {
		if strings.HasPrefix(name, s.Prefix) && !deployed[name] {
			r.skip(name, reasonNotFound, fmt.Sprintf("belongs to stack %s but is not deployed in %s: deploy the stack, then run detect again", s.Stack, r.Region))
		}
	}
	return fns, nil
}

// vpcEgress returns, for each candidate, why it cannot reach the tunnel server ("" when it can).
func (r *run) vpcEgress(ctx context.Context, cs []candidate) ([]string, error) {
	msgs := make([]string, len(cs))
	if r.VPC == VPCAllow {
		return msgs, nil
	}
	if host, private := PrivateIPv4(r.TunnelHost); private {
		return r.privateEgress(ctx, cs, host)
	}
	subnets := map[string]string{}
	for _, c := range cs {
		if c.unreadable {
			continue
		}
		for _, s := range c.subnets {
			subnets[s] = c.vpcID
		}
	}
	if len(subnets) == 0 {
		return msgs, nil
	}
	var denied error
	if r.VPC == VPCCheck {
		if err := r.routes.load(ctx, subnets); err != nil {
			if !isDenied(err) {
				return nil, err
			}
			denied = err
		}
	}
	for i, c := range cs {
		if c.vpcID == "" || c.unreadable {
			continue
		}
		switch {
		case r.VPC == VPCSkip:
			msgs[i] = fmt.Sprintf("runs in VPC %s and --vpc skip was given", c.vpcID)
		case denied != nil:
			msgs[i] = fmt.Sprintf("runs in VPC %s and its route tables cannot be read (%s on ec2:DescribeRouteTables): "+
				"use --vpc allow to patch it anyway if the VPC has a NAT gateway", c.vpcID, errorCode(denied))
		default:
			if ok, without := Egress(c.subnets, c.vpcID, r.routes.tables); !ok {
				msgs[i] = fmt.Sprintf("runs in a VPC without a NAT gateway: it cannot reach the tunnel server "+
					"(use --vpc allow to patch it anyway); no 0.0.0.0/0 route through NAT from %s", strings.Join(without, ", "))
			}
		}
	}
	return msgs, nil
}

// privateEgress decides for a tunnel host at a private address: only a function attached to the VPC that holds
// it reaches it (through the VPC's local route, NAT or not); a function outside any VPC, or in another one, does
// not (peering, a transit gateway or a VPN might route it, but that is not read: --vpc allow patches it anyway).
// The VPCs of all the candidates are read in one batch; no route table is needed.
func (r *run) privateEgress(ctx context.Context, cs []candidate, host netip.Addr) ([]string, error) {
	msgs := make([]string, len(cs))
	var ids []string
	for _, c := range cs {
		if !c.unreadable && c.vpcID != "" && !slices.Contains(ids, c.vpcID) {
			ids = append(ids, c.vpcID)
		}
	}
	var vpcs map[string]ec2types.Vpc
	var denied error
	if r.VPC == VPCCheck && len(ids) > 0 {
		var err error
		if vpcs, err = describeVpcs(ctx, r.ec2, ids); err != nil {
			if !isDenied(err) {
				return nil, err
			}
			denied = err
		}
	}
	for i, c := range cs {
		if c.unreadable {
			continue
		}
		v, known := vpcs[c.vpcID]
		switch {
		case c.vpcID == "":
			msgs[i] = fmt.Sprintf("is not attached to a VPC: it cannot reach the tunnel host %s, a private address "+
				"(use --vpc allow to patch it anyway)", host)
		case r.VPC == VPCSkip:
			msgs[i] = fmt.Sprintf("runs in VPC %s and --vpc skip was given", c.vpcID)
		case denied != nil:
			msgs[i] = fmt.Sprintf("runs in VPC %s and its CIDR blocks cannot be read (%s on ec2:DescribeVpcs): "+
				"use --vpc allow to patch it anyway if the VPC holds the tunnel host %s", c.vpcID, errorCode(denied), host)
		case !known:
			msgs[i] = fmt.Sprintf("runs in VPC %s, which ec2:DescribeVpcs does not list: it cannot be checked against the tunnel host %s "+
				"(use --vpc allow to patch it anyway)", c.vpcID, host)
		case !VPCHolds(v, host):
			msgs[i] = fmt.Sprintf("runs in VPC %s, whose CIDR blocks (%s) do not hold the tunnel host %s: a private address "+
				"is reached only from its own VPC (use --vpc allow to patch it anyway if peering or a transit gateway routes to it)",
				c.vpcID, joinPrefixes(VPCBlocks(v)), host)
		default:
			cs[i].insideVPC = true
		}
	}
	return msgs, nil
}

func joinPrefixes(ps []netip.Prefix) string {
	parts := make([]string, len(ps))
	for i, p := range ps {
		parts[i] = p.String()
	}
	return strings.Join(parts, ", ")
}

// securityGroups warns about each function whose security groups together allow no TCP egress to the tunnel host
// on every tunnel port: it would be patched but time out connecting. The groups of all the functions are read in
// one batch. A refusal (IAM) is one warning, not an error: the functions are kept, unchecked.
func (r *run) securityGroups(ctx context.Context, cs []candidate) error {
	var ids []string
	for _, c := range cs {
		for _, g := range c.groups {
			if !slices.Contains(ids, g) {
				ids = append(ids, g)
			}
		}
	}
	if len(ids) == 0 {
		return nil
	}
	host, _ := PrivateIPv4(r.TunnelHost)
	groups, err := describeSecurityGroups(ctx, r.ec2, ids)
	if isDenied(err) {
		names := make([]string, len(cs))
		for i, c := range cs {
			names[i] = c.name
		}
		r.result.Warnings = append(r.result.Warnings, fmt.Sprintf("the security groups of %s cannot be read (%s on ec2:DescribeSecurityGroups): "+
			"whether they allow TCP to the tunnel host %s on ports %s was not checked", strings.Join(names, ", "), errorCode(err), host, r.TunnelPorts))
		return nil
	}
	if err != nil {
		return err
	}
	for _, c := range cs {
		var gs []ec2types.SecurityGroup
		for _, id := range c.groups {
			if g, ok := groups[id]; ok {
				gs = append(gs, g)
			}
		}
		if len(gs) == 0 {
			continue
		}
		allowed := EgressPorts(gs, host)
		if Covers(allowed, r.TunnelPorts) {
			continue
		}
		groupsWord, allow := "security group", "allows"
		if len(gs) > 1 {
			groupsWord, allow = "security groups", "allow"
		}
		what := fmt.Sprintf("%s no TCP to the tunnel host %s", allow, host)
		if len(allowed) > 0 {
			what = fmt.Sprintf("%s TCP to the tunnel host %s only on ports %s", allow, host, formatRanges(allowed))
		}
		r.result.Warnings = append(r.result.Warnings, fmt.Sprintf("%s: its %s %s %s, but the bore server hands out tunnel ports in %s: "+
			"add an egress rule for TCP %s to %s, or its connections to the tunnel will time out",
			c.name, groupsWord, groupNames(gs), what, r.TunnelPorts, r.TunnelPorts, host))
	}
	return nil
}

// limits predicts what env patch will do to each binding (recorded in the bindings and Result.Decisions) and
// whether Lambda would refuse the patched variables, sized with the longest public address.
func (r *run) limits(c *candidate) (reason, message string) {
	targets := map[string]lambdaenv.Target{}
	for _, res := range r.Resources {
		targets[res.Name] = lambdaenv.Target{Resource: res, Public: r.Public}
	}
	next, _, decisions, err := lambdaenv.Rewrite(c.env, c.bindings, targets)
	if err != nil {
		// Not a skip reason: env patch refuses it with the same message; say it now.
		r.result.Warnings = append(r.result.Warnings, fmt.Sprintf("%s: %v", c.name, err))
		return "", ""
	}
	for i, d := range decisions {
		c.bindings[i].Action = string(d.Action)
	}
	if r.result.Decisions == nil {
		r.result.Decisions = map[string][]lambdaenv.Decision{}
	}
	r.result.Decisions[c.name] = decisions
	var limit *lambdaenv.LimitError
	if err := lambdaenv.CheckLimits(next); errors.As(err, &limit) {
		switch limit.Reason {
		case reasonReservedKey:
			return reasonReservedKey, fmt.Sprintf("patching it would write %s, a variable Lambda reserves: the update would be refused", limit.Key)
		default:
			return reasonTooLarge, fmt.Sprintf("patched, its variables would take up to %d bytes, over Lambda's 4 KB limit", limit.Size)
		}
	}
	return "", ""
}
