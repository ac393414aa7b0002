package awssim

import (
	"encoding/xml"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Stack is a CloudFormation stack: only its resources matter here.
type Stack struct {
	Resources []StackResource `json:"resources"`
}

// StackResource is one resource of a stack.
type StackResource struct {
	LogicalID  string `json:"logicalId"`
	PhysicalID string `json:"physicalId"`
	Type       string `json:"type"`
	// Status defaults to CREATE_COMPLETE.
	Status string `json:"status,omitempty"`
}

// Subnet is an EC2 subnet.
type Subnet struct {
	ID               string `json:"id"`
	VpcID            string `json:"vpcId"`
	CidrBlock        string `json:"cidrBlock,omitempty"`
	AvailabilityZone string `json:"availabilityZone,omitempty"`
}

// RouteTable is an EC2 route table. Main marks the VPC's main table, which
// serves the subnets without an explicit association; Associations lists the
// explicitly associated subnet IDs.
type RouteTable struct {
	ID           string   `json:"id"`
	VpcID        string   `json:"vpcId"`
	Main         bool     `json:"main,omitempty"`
	Associations []string `json:"associations,omitempty"`
	Routes       []Route  `json:"routes,omitempty"`
}

// Route is one route; exactly one target is usually set. State is active
// (default) or blackhole.
type Route struct {
	DestinationCidrBlock string `json:"destinationCidrBlock"`
	NatGatewayID         string `json:"natGatewayId,omitempty"`
	InstanceID           string `json:"instanceId,omitempty"`
	GatewayID            string `json:"gatewayId,omitempty"`
	State                string `json:"state,omitempty"`
}

// PutStack creates or replaces a stack.
func (s *Server) PutStack(name string, st Stack) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st.Resources = slices.Clone(st.Resources)
	s.stacks[name] = st
}

// PutSubnet creates or replaces a subnet.
func (s *Server) PutSubnet(sn Subnet) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.subnets[sn.ID] = sn
}

// PutRouteTable creates or replaces a route table.
func (s *Server) PutRouteTable(rt RouteTable) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt.Associations = slices.Clone(rt.Associations)
	rt.Routes = slices.Clone(rt.Routes)
	s.routeTables[rt.ID] = rt
}

const (
	cloudFormationNS = "http://cloudformation.amazonaws.com/doc/2010-05-15/"
	ec2NS            = "http://ec2.amazonaws.com/doc/2016-11-15/"
)

// query serves the form-encoded POST / protocols, routed by Action.
func (s *Server) query(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeQueryError(w, apiError{status: 400, code: "MalformedQueryString", message: err.Error()})
		return
	}
	form := r.PostForm
	action := form.Get("Action")
	if op, ok := s.queryOperations()[action]; ok {
		if s.begin(w, r, action, op.proto) {
			op.serve(w, form)
		}
		return
	}
	proto := protoCloudFormation
	if form.Get("Version") == "2016-11-15" {
		proto = protoEC2
	}
	proto.writeError(w, apiError{status: 400, code: "InvalidAction",
		message: fmt.Sprintf("The action %s is not valid for this web service (awssim).", action)})
}

// queryOperation is an operation of the form-encoded protocols.
type queryOperation struct {
	proto protocol
	serve func(http.ResponseWriter, url.Values)
}

// queryOperations are the query-protocol operations, by Action.
func (s *Server) queryOperations() map[string]queryOperation {
	return map[string]queryOperation{
		"ListStackResources":     {protoCloudFormation, s.listStackResources},
		"DescribeRouteTables":    {protoEC2, s.describeRouteTables},
		"DescribeSubnets":        {protoEC2, s.describeSubnets},
		"DescribeVpcs":           {protoEC2, s.describeVpcs},
		"DescribeSecurityGroups": {protoEC2, s.describeSecurityGroups},
	}
}

// listStackResourcesPageSize is CloudFormation's page size for ListStackResources.
const listStackResourcesPageSize = 100

func (s *Server) listStackResources(w http.ResponseWriter, form url.Values) {
	ref := form.Get("StackName")
	if ref == "" {
		writeQueryError(w, apiError{status: 400, code: "ValidationError", message: "1 validation error detected: Value null at 'stackName' failed to satisfy constraint: Member must not be null"})
		return
	}
	name := ref
	// A stack ID is arn:aws:cloudformation:REGION:ACCOUNT:stack/NAME/UUID.
	if rest, ok := strings.CutPrefix(ref, "arn:"); ok {
		if parts := strings.Split(rest, "/"); len(parts) == 3 {
			name = parts[1]
		}
	}
	s.mu.Lock()
	st, ok := s.stacks[name]
	s.mu.Unlock()
	if !ok {
		writeQueryError(w, apiError{status: 400, code: "ValidationError", message: fmt.Sprintf("Stack with id %s does not exist", ref)})
		return
	}
	start, aerr := pageStart(form.Get("NextToken"), len(st.Resources))
	if aerr != nil {
		writeQueryError(w, *aerr)
		return
	}
	end := min(start+listStackResourcesPageSize, len(st.Resources))

	type driftInformation struct {
		StackResourceDriftStatus string
	}
	type summary struct {
		LogicalResourceId    string
		PhysicalResourceId   string `xml:",omitempty"`
		ResourceType         string
		LastUpdatedTimestamp string
		ResourceStatus       string
		DriftInformation     driftInformation
	}
	type result struct {
		StackResourceSummaries []summary `xml:"StackResourceSummaries>member"`
		NextToken              string    `xml:",omitempty"`
	}
	type response struct {
		XMLName   xml.Name `xml:"ListStackResourcesResponse"`
		Xmlns     string   `xml:"xmlns,attr"`
		Result    result   `xml:"ListStackResourcesResult"`
		RequestID string   `xml:"ResponseMetadata>RequestId"`
	}
	out := response{Xmlns: cloudFormationNS, RequestID: s.requestID()}
	updated := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Format(time.RFC3339)
	for _, res := range st.Resources[start:end] {
		status := res.Status
		if status == "" {
			status = "CREATE_COMPLETE"
		}
		out.Result.StackResourceSummaries = append(out.Result.StackResourceSummaries, summary{
			LogicalResourceId: res.LogicalID, PhysicalResourceId: res.PhysicalID, ResourceType: res.Type,
			LastUpdatedTimestamp: updated, ResourceStatus: status, DriftInformation: driftInformation{"NOT_CHECKED"},
		})
	}
	if end < len(st.Resources) {
		out.Result.NextToken = pageToken(end)
	}
	writeXML(w, http.StatusOK, out)
}

// pageToken and pageStart make the opaque NextToken of the query services:
// the offset of the next page.
func pageToken(offset int) string { return "awssim-" + strconv.Itoa(offset) }

func pageStart(token string, n int) (int, *apiError) {
	if token == "" {
		return 0, nil
	}
	offset, err := strconv.Atoi(strings.TrimPrefix(token, "awssim-"))
	if err != nil || !strings.HasPrefix(token, "awssim-") || offset < 0 || offset > n {
		return 0, &apiError{status: 400, code: "ValidationError", message: "Invalid NextToken: " + token}
	}
	return offset, nil
}

// ec2Filters reads Filter.N.Name / Filter.N.Value.M: filters AND together,
// the values of one filter OR.
func ec2Filters(form url.Values) map[string][]string {
	filters := map[string][]string{}
	for i := 1; ; i++ {
		name := form.Get(fmt.Sprintf("Filter.%d.Name", i))
		if name == "" {
			return filters
		}
		filters[name] = append(filters[name], ec2List(form, fmt.Sprintf("Filter.%d.Value", i))...)
	}
}

// ec2List reads PREFIX.1, PREFIX.2, ...
func ec2List(form url.Values, prefix string) []string {
	var out []string
	for i := 1; ; i++ {
		v, ok := form[fmt.Sprintf("%s.%d", prefix, i)]
		if !ok {
			return out
		}
		out = append(out, v...)
	}
}

func invalidFilter(name string) apiError {
	return apiError{status: 400, code: "InvalidParameterValue", message: fmt.Sprintf("The filter '%s' is invalid", name)}
}

// anyIn reports whether one of have is among want.
func anyIn(want []string, have ...string) bool {
	for _, h := range have {
		if slices.Contains(want, h) {
			return true
		}
	}
	return false
}

// describe is what a Describe* operation's listing takes from the request:
// the parameter listing wanted IDs (ID.N), the error a missing one gives, the
// filters it knows, and the largest MaxResults it accepts.
type describe struct {
	idParam        string
	notFoundCode   string
	notFoundFormat string // with the missing ID
	filters        []string
	maxResults     int
}

// page answers the listing part of a Describe* request: it checks the
// filters, then returns the page (by MaxResults/NextToken) of the sorted IDs
// of all that are among the wanted IDs (when given) and match the filters,
// and the next token. A wanted ID that does not exist is an error, as in EC2.
// On error it has written the answer and returns false.
func page[T any](w http.ResponseWriter, form url.Values, op describe, all map[string]T, match func(T, map[string][]string) bool) ([]string, string, bool) {
	filters := ec2Filters(form)
	for name := range filters {
		if !slices.Contains(op.filters, name) {
			writeEC2Error(w, invalidFilter(name))
			return nil, "", false
		}
	}
	wantIDs := ec2List(form, op.idParam)
	for _, id := range wantIDs {
		if _, ok := all[id]; !ok {
			writeEC2Error(w, apiError{status: 400, code: op.notFoundCode, message: fmt.Sprintf(op.notFoundFormat, id)})
			return nil, "", false
		}
	}
	var ids []string
	for _, id := range slices.Sorted(maps.Keys(all)) {
		if (len(wantIDs) == 0 || slices.Contains(wantIDs, id)) && match(all[id], filters) {
			ids = append(ids, id)
		}
	}
	ids, next, aerr := ec2Page(form, ids, op.maxResults)
	if aerr != nil {
		writeEC2Error(w, *aerr)
		return nil, "", false
	}
	return ids, next, true
}

// ec2Page cuts a sorted ID list by MaxResults/NextToken; MaxResults must be
// between 5 and maxResults.
func ec2Page(form url.Values, ids []string, maxResults int) ([]string, string, *apiError) {
	start, aerr := pageStart(form.Get("NextToken"), len(ids))
	if aerr != nil {
		aerr.code = "InvalidNextToken"
		return nil, "", aerr
	}
	end := len(ids)
	if v := form.Get("MaxResults"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 5 || n > maxResults {
			return nil, "", &apiError{status: 400, code: "InvalidParameterValue",
				message: fmt.Sprintf("Value ( %s ) for parameter maxResults is invalid. Expecting a value greater than 5.", v)}
		}
		end = min(start+n, len(ids))
	}
	next := ""
	if end < len(ids) {
		next = pageToken(end)
	}
	return ids[start:end], next, nil
}

func (s *Server) describeRouteTables(w http.ResponseWriter, form url.Values) {
	s.mu.Lock()
	all := maps.Clone(s.routeTables)
	account := s.account
	s.mu.Unlock()
	page, next, ok := page(w, form, describe{"RouteTableId", "InvalidRouteTableID.NotFound", "The routeTable ID '%s' does not exist",
		[]string{"association.subnet-id", "vpc-id", "association.main", "route-table-id", "association.route-table-association-id"}, 100},
		all, routeTableMatches)
	if !ok {
		return
	}

	type associationState struct {
		State string `xml:"state"`
	}
	type association struct {
		RouteTableAssociationID string           `xml:"routeTableAssociationId"`
		RouteTableID            string           `xml:"routeTableId"`
		SubnetID                string           `xml:"subnetId,omitempty"`
		Main                    bool             `xml:"main"`
		AssociationState        associationState `xml:"associationState"`
	}
	type route struct {
		DestinationCidrBlock string `xml:"destinationCidrBlock"`
		GatewayID            string `xml:"gatewayId,omitempty"`
		InstanceID           string `xml:"instanceId,omitempty"`
		InstanceOwnerID      string `xml:"instanceOwnerId,omitempty"`
		NatGatewayID         string `xml:"natGatewayId,omitempty"`
		State                string `xml:"state"`
		Origin               string `xml:"origin"`
	}
	type routeTable struct {
		RouteTableID      string        `xml:"routeTableId"`
		VpcID             string        `xml:"vpcId"`
		OwnerID           string        `xml:"ownerId"`
		Routes            []route       `xml:"routeSet>item"`
		Associations      []association `xml:"associationSet>item"`
		PropagatingVgwSet string        `xml:"propagatingVgwSet"`
		TagSet            string        `xml:"tagSet"`
	}
	type response struct {
		XMLName     xml.Name     `xml:"DescribeRouteTablesResponse"`
		Xmlns       string       `xml:"xmlns,attr"`
		RequestID   string       `xml:"requestId"`
		RouteTables []routeTable `xml:"routeTableSet>item"`
		NextToken   string       `xml:"nextToken,omitempty"`
	}
	out := response{Xmlns: ec2NS, RequestID: s.requestID(), NextToken: next}
	for _, id := range page {
		rt := all[id]
		x := routeTable{RouteTableID: rt.ID, VpcID: rt.VpcID, OwnerID: account}
		for _, r := range rt.Routes {
			state := r.State
			if state == "" {
				state = "active"
			}
			xr := route{DestinationCidrBlock: r.DestinationCidrBlock, GatewayID: r.GatewayID, InstanceID: r.InstanceID,
				NatGatewayID: r.NatGatewayID, State: state, Origin: "CreateRoute"}
			if r.InstanceID != "" {
				xr.InstanceOwnerID = account
			}
			if r.GatewayID == "local" {
				xr.Origin = "CreateRouteTable"
			}
			x.Routes = append(x.Routes, xr)
		}
		if rt.Main {
			x.Associations = append(x.Associations, association{RouteTableAssociationID: "rtbassoc-main-" + rt.ID,
				RouteTableID: rt.ID, Main: true, AssociationState: associationState{"associated"}})
		}
		for _, subnet := range rt.Associations {
			x.Associations = append(x.Associations, association{RouteTableAssociationID: "rtbassoc-" + subnet,
				RouteTableID: rt.ID, SubnetID: subnet, AssociationState: associationState{"associated"}})
		}
		out.RouteTables = append(out.RouteTables, x)
	}
	writeXML(w, http.StatusOK, out)
}

// routeTableMatches applies DescribeRouteTables filters. association.subnet-id
// matches explicit associations only: a subnet served by the main table
// matches nothing, so callers must fall back to association.main, as with EC2.
func routeTableMatches(rt RouteTable, filters map[string][]string) bool {
	for name, values := range filters {
		var ok bool
		switch name {
		case "association.subnet-id":
			ok = anyIn(values, rt.Associations...)
		case "vpc-id":
			ok = anyIn(values, rt.VpcID)
		case "association.main":
			ok = rt.Main && anyIn(values, "true") || !rt.Main && anyIn(values, "false")
		case "route-table-id":
			ok = anyIn(values, rt.ID)
		case "association.route-table-association-id":
			ids := []string{}
			if rt.Main {
				ids = append(ids, "rtbassoc-main-"+rt.ID)
			}
			for _, subnet := range rt.Associations {
				ids = append(ids, "rtbassoc-"+subnet)
			}
			ok = anyIn(values, ids...)
		}
		if !ok {
			return false
		}
	}
	return true
}

func (s *Server) describeSubnets(w http.ResponseWriter, form url.Values) {
	s.mu.Lock()
	all := maps.Clone(s.subnets)
	account, region := s.account, s.region
	s.mu.Unlock()
	page, next, ok := page(w, form, describe{"SubnetId", "InvalidSubnetID.NotFound", "The subnet ID '%s' does not exist",
		[]string{"vpc-id", "subnet-id", "availability-zone"}, 1000},
		all, func(sn Subnet, filters map[string][]string) bool {
			return (filters["vpc-id"] == nil || anyIn(filters["vpc-id"], sn.VpcID)) &&
				(filters["subnet-id"] == nil || anyIn(filters["subnet-id"], sn.ID)) &&
				(filters["availability-zone"] == nil || anyIn(filters["availability-zone"], sn.AvailabilityZone))
		})
	if !ok {
		return
	}

	type subnet struct {
		SubnetID                string `xml:"subnetId"`
		SubnetArn               string `xml:"subnetArn"`
		State                   string `xml:"state"`
		VpcID                   string `xml:"vpcId"`
		OwnerID                 string `xml:"ownerId"`
		CidrBlock               string `xml:"cidrBlock,omitempty"`
		AvailableIPAddressCount int    `xml:"availableIpAddressCount"`
		AvailabilityZone        string `xml:"availabilityZone,omitempty"`
		DefaultForAz            bool   `xml:"defaultForAz"`
		MapPublicIPOnLaunch     bool   `xml:"mapPublicIpOnLaunch"`
	}
	type response struct {
		XMLName   xml.Name `xml:"DescribeSubnetsResponse"`
		Xmlns     string   `xml:"xmlns,attr"`
		RequestID string   `xml:"requestId"`
		Subnets   []subnet `xml:"subnetSet>item"`
		NextToken string   `xml:"nextToken,omitempty"`
	}
	out := response{Xmlns: ec2NS, RequestID: s.requestID(), NextToken: next}
	for _, id := range page {
		sn := all[id]
		out.Subnets = append(out.Subnets, subnet{SubnetID: sn.ID, SubnetArn: fmt.Sprintf("arn:aws:ec2:%s:%s:subnet/%s", region, account, sn.ID),
			State: "available", VpcID: sn.VpcID, OwnerID: account, CidrBlock: sn.CidrBlock, AvailableIPAddressCount: 250,
			AvailabilityZone: sn.AvailabilityZone})
	}
	writeXML(w, http.StatusOK, out)
}
