// Package detect finds the deployed Lambda functions that reference local resources (CONTRACT.md §3, `stptunnel
// detect`): it lists the functions in scope, binds their environment variables to resources and decides which
// functions cannot be patched.
//
// Scope: the functions named (GetFunctionConfiguration each), the functions of a CloudFormation stack
// (ListStackResources, then the region's listing filtered to them), those whose name has a prefix, or every
// function of the region. ListFunctions pages carry each function's environment and VPC configuration, so a
// listing costs one call per 50 functions and nothing per function.
//
// Bindings, in this order, the first one to claim a variable wins (see Bind):
//   - convention: STP_<SNAKE_NAME>_CONNECTION_STRING, _HOST, _PORT, _ENDPOINT, by name whatever the value;
//   - map: an explicit ENV=RESOURCE, when the function has ENV;
//   - value: any other variable whose value holds the resource's local address (connstr.References).
//
// Skips, one reason per function, checked in this order: not-found (a named function is not deployed),
// no-access (its variables or configuration cannot be read: KMS or IAM), vpc-no-nat (in a VPC without egress
// to the internet, see Egress), reserved-key and too-large (the patched variables, estimated with the longest
// public address the tunnel could get, would be refused by Lambda). Functions without a binding are neither
// listed nor skipped, except those whose variables cannot be read: nobody can tell whether they use a resource.
//
// VPC functions (--vpc check): a function is reachable only when every one of its subnets routes 0.0.0.0/0,
// active, through a NAT gateway or a NAT instance, in the table associated with the subnet or else the VPC's main
// table. Every subnet, because Lambda places the function's interfaces in all of them and any invocation may run
// in any one. An internet gateway alone does not count (Lambda's interfaces have no public IP), and neither do
// routes whose egress cannot be seen from the table (transit gateway, peering, a bare network interface): those
// functions are skipped with a hint to use --vpc allow. When ec2:DescribeRouteTables is denied, every bound VPC
// function is skipped the same way. The route tables of every subnet of every bound VPC function are read in one
// batch (DescribeRouteTables filtered by association.subnet-id, then the main tables of the VPCs with subnets
// left over, 200 filter values per call), one call per page.
//
// A tunnel server inside the functions' VPC (Options.TunnelHost is a private IPv4 address, RFC 1918 or RFC 6598:
// `--tunnel-host`, else the server's host): a function attached to the VPC whose CIDR blocks (the primary and the
// associated ones, ec2:DescribeVpcs) hold that address reaches it through the VPC's local route and is kept, NAT or
// not; every other function — outside any VPC, or in another VPC — is skipped as vpc-no-nat, with a hint to use
// --vpc allow when peering or a transit gateway routes to it (not read). No route table is read then. The
// security groups of the kept functions (ec2:DescribeSecurityGroups) must together allow TCP egress to the host on
// every port the server may hand out (Options.TunnelPorts, DefaultTunnelPorts 1024-65535): where they do not, a
// warning names the function, its groups and the ports they allow. Rules to another group or a prefix list count as
// allowing (their members are not read). A name as tunnel host is not resolved and gets the NAT check. Either
// way, two batched calls: DescribeVpcs for every VPC of a bound function, DescribeSecurityGroups for every group of
// a kept one (200 filter values per call, one call per page). Refusals (IAM): DescribeVpcs skips the VPC functions
// with a hint; DescribeSecurityGroups is one warning, the functions kept unchecked.
//
// A bound variable whose value a tunnel cannot carry (connstr.Unsupported) is not a skip reason: the function
// is listed and Result.Warnings says why env patch will refuse it. A convention or map binding whose value names
// something else (a deployed cloud database) is the resource all the same: each binding's "action" (and
// Result.Decisions) says whether env patch rewrites it in place or replaces it with the tunnel (CONTRACT.md §4).
//
// API: the tool's own; it may change.
package detect
