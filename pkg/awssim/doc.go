// Package awssim is an in-process emulator of the AWS API calls stptunnel
// makes, for tests and `stptunnel demo`. The real aws-sdk-go-v2 clients reach
// it through BaseEndpoint or AWS_ENDPOINT_URL (static credentials of any
// value; signatures are not checked).
//
// # What it emulates
//
// Lambda (restJson1, /2015-03-31/...):
//   - ListFunctions: pages of at most 50 whatever MaxItems says, Marker and
//     NextMarker; items omit State and LastUpdateStatus, as AWS's do.
//   - GetFunction, GetFunctionConfiguration: State Active, LastUpdateStatus
//     InProgress until the update delay has passed, then Successful.
//   - UpdateFunctionConfiguration: Environment.Variables replaces the whole map.
//     Checks, in order: the function exists (404 ResourceNotFoundException),
//     keys match [a-zA-Z][a-zA-Z0-9_]+ (400 ValidationException), no reserved
//     key such as AWS_REGION (400 InvalidParameterValueException), the compact
//     JSON of the map is at most 4096 bytes (400 InvalidParameterValueException),
//     no update in progress (409 ResourceConflictException "... An update is in
//     progress for resource: ARN"), RevisionId matches when given (412
//     PreconditionFailedException). The answer is LastUpdateStatus InProgress
//     with a new RevisionId; the RevisionId changes once more when the update
//     completes, as in AWS, so a writer must re-read after waiting.
//   - Invoke (POST .../invocations): runs the function's Go handler; a handler
//     error is a 200 with X-Amz-Function-Error: Unhandled. Event and DryRun
//     invocation types answer 202 and 204.
//   - Functions are named by name, partial ARN (ACCOUNT:function:NAME) or full
//     ARN, optionally with :$LATEST; path labels may be percent-encoded.
//   - A function with a KMS error returns Environment.Error{ErrorCode, Message}
//     and no Variables. Updating it is accepted and counted, so a test can
//     assert that a client never wrote what it could not read.
//   - Errors carry the code in X-Amzn-ErrorType and a JSON body
//     {"Type":"User","message":...} ("Service" for 5xx).
//   - Quotas (Options.Quotas, SetQuotas): Lambda's default request rates
//     per account and region, on unless turned off — 15 requests per second
//     shared by ListFunctions, GetFunctionConfiguration and
//     UpdateFunctionConfiguration (the control plane: every API but Invoke,
//     GetFunction and GetPolicy), and 100 per second for GetFunction. Each is
//     a token bucket holding one second of requests. Over quota: 429
//     TooManyRequestsException, body {"Type":"User","message":"Rate
//     exceeded","Reason":"CallerRateLimitExceeded"}, header Retry-After
//     (whole seconds; the SDK decodes it as RetryAfterSeconds). Refused calls
//     count in Throttled, not in Calls.
//
// CloudFormation (awsQuery: form POST, XML): ListStackResources by stack name
// or stack ID, 100 per page with NextToken; a missing stack is 400
// ValidationError "Stack with id X does not exist".
//
// EC2 (ec2Query: form POST, XML): DescribeRouteTables with RouteTableId.N and
// the filters association.subnet-id (explicit associations only, as in EC2),
// association.main, vpc-id, route-table-id; DescribeSubnets with SubnetId.N and
// the filters vpc-id, subnet-id, availability-zone; DescribeVpcs with VpcId.N
// and the filters vpc-id, cidr (the primary block), cidr-block-association.
// cidr-block (any block), is-default, state, answering cidrBlock and
// cidrBlockAssociationSet (the primary block first, then the associated ones,
// each "associated"); DescribeSecurityGroups with GroupId.N, GroupName.N and
// the filters group-id, group-name, vpc-id, answering ipPermissions and
// ipPermissionsEgress (ipProtocol, fromPort/toPort except for "-1", groups,
// ipRanges, ipv6Ranges, prefixListIds). All page with MaxResults/NextToken
// (DescribeRouteTables 5-100, the others 5-1000). A missing ID in an ID list
// is 400 InvalidRouteTableID.NotFound, InvalidSubnetID.NotFound,
// InvalidVpcID.NotFound or InvalidGroup.NotFound; unknown filters are 400
// InvalidParameterValue.
//
// # Test controls
//
// PutFunction, DeleteFunction and SetEnv change functions out of band, as a
// deploy would (SetEnv starts an update like the API's, with a new RevisionId).
// SetFault injects latency, throttling, conflicts, 5xx or dropped connections
// into an operation, for the next N calls or at a seeded rate. Calls counts
// requests per operation the quotas admitted, Throttled those they refused,
// Operations the SDK operations among them (one per amz-sdk-invocation-id:
// the SDK's retries left out, so counts stay exact when a transport race
// makes it retry), and Updates accepted updates per function. Tests that load the emulator
// beyond what an account allows (stress tests, exact call counts under bursts)
// turn the quotas off with Quotas{Off: true}.
// RegisterHandler and Invoke run a function's code with the environment an
// invocation would see: an update still InProgress is not yet live.
//
// # Seed files
//
// A seed is JSON; LoadSeed rejects unknown fields. Every section is optional.
//
//	{
//	  "region": "eu-west-1",
//	  "account": "123456789012",
//	  "functions": [
//	    {"name": "api", "runtime": "nodejs20.x", "handler": "index.handler",
//	     "env": {"STP_POSTGRES_DB_CONNECTION_STRING": "postgres://app:pw@localhost:5432/app"},
//	     "invoke": "dial:STP_POSTGRES_DB_CONNECTION_STRING"},
//	    {"name": "worker", "env": {"QUEUE": "jobs"},
//	     "vpc": {"subnetIds": ["subnet-private"], "securityGroupIds": ["sg-1"]}},
//	    {"name": "secret", "env": {"DB": "x"}, "kmsError": "AccessDeniedException"}
//	  ],
//	  "stacks": {
//	    "app-dev": {"resources": [
//	      {"logicalId": "ApiFunction", "physicalId": "api", "type": "AWS::Lambda::Function"}
//	    ]}
//	  },
//	  "subnets": [
//	    {"id": "subnet-private", "vpcId": "vpc-1", "cidrBlock": "10.0.1.0/24", "availabilityZone": "eu-west-1a"}
//	  ],
//	  "routeTables": [
//	    {"id": "rtb-main", "vpcId": "vpc-1", "main": true,
//	     "routes": [{"destinationCidrBlock": "10.0.0.0/16", "gatewayId": "local"},
//	                {"destinationCidrBlock": "0.0.0.0/0", "gatewayId": "igw-1"}]},
//	    {"id": "rtb-private", "vpcId": "vpc-1", "associations": ["subnet-private"],
//	     "routes": [{"destinationCidrBlock": "0.0.0.0/0", "natGatewayId": "nat-1", "state": "active"}]}
//	  ],
//	  "vpcs": [
//	    {"id": "vpc-1", "cidrBlock": "10.0.0.0/16", "associatedCidrBlocks": ["100.64.0.0/16"]}
//	  ],
//	  "securityGroups": [
//	    {"id": "sg-1", "name": "lambda", "vpcId": "vpc-1",
//	     "egress": [{"protocol": "tcp", "fromPort": 5432, "toPort": 5432, "cidrs": ["10.0.0.0/16"]},
//	                {"protocol": "-1", "groups": ["sg-db"]}]}
//	  ]
//	}
//
// Functions: name (required), runtime, handler, env, description, memorySize,
// timeout, vpc {subnetIds, securityGroupIds, vpcId (default: the first
// subnet's)}, kmsError (the Environment.Error code every read returns instead
// of the variables) and invoke (a built-in handler: "env", "echo" or
// "dial:VAR", see BuiltinHandler). The seed's env is taken as is, unchecked,
// so a test can start from states the API would refuse. Stacks map a stack
// name to its resources {logicalId, physicalId, type, status}. Route tables
// have routes {destinationCidrBlock, natGatewayId | instanceId | gatewayId,
// state active|blackhole}, a main flag and explicit subnet associations. VPCs
// have a primary IPv4 cidrBlock and associatedCidrBlocks. Security groups have
// name (default: the ID), description, vpcId, ingress and egress rules
// {protocol "-1" | tcp | udp | ..., fromPort, toPort, cidrs, groups,
// prefixLists}; a group without "egress" gets the rule EC2 gives every new
// group (all traffic to 0.0.0.0/0), "egress": [] none.
//
// The package awssim/simscript exposes the emulator to testscript scripts.
//
// API: the tool's own (its tests and demo); it may change.
package awssim
