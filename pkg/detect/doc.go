// Package detect finds the deployed Lambda functions that reference local resources (DESIGN.md §4, `stptunnel
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
// The route tables of every subnet of every VPC function are read in one batch (DescribeRouteTables filtered by
// association.subnet-id, then the main tables of the VPCs with subnets left over), one call per page.
package detect
