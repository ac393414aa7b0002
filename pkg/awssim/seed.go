package awssim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
)

// Seed is the content of a seed file; see the package documentation.
type Seed struct {
	Region         string           `json:"region,omitempty"`
	Account        string           `json:"account,omitempty"`
	Functions      []Function       `json:"functions,omitempty"`
	Stacks         map[string]Stack `json:"stacks,omitempty"`
	Subnets        []Subnet         `json:"subnets,omitempty"`
	RouteTables    []RouteTable     `json:"routeTables,omitempty"`
	VPCs           []VPC            `json:"vpcs,omitempty"`
	SecurityGroups []SecurityGroup  `json:"securityGroups,omitempty"`
}

var accountPattern = regexp.MustCompile(`^\d{12}$`)

// LoadSeed reads and checks a seed. Unknown fields are errors, so a typo in
// a seed fails loudly instead of seeding less than the test expects.
func LoadSeed(r io.Reader) (Seed, error) {
	var seed Seed
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&seed); err != nil {
		return Seed{}, fmt.Errorf("reading seed: %w", err)
	}
	if err := seed.validate(); err != nil {
		return Seed{}, fmt.Errorf("checking seed: %w", err)
	}
	return seed, nil
}

func (seed Seed) validate() error {
	var errs []error
	if seed.Account != "" && !accountPattern.MatchString(seed.Account) {
		errs = append(errs, fmt.Errorf("account %q: want 12 digits", seed.Account))
	}
	names := map[string]bool{}
	for i, f := range seed.Functions {
		if _, _, ok := parseFunctionRef(f.Name); !ok || f.Name != functionNameOf(f.Name) {
			errs = append(errs, fmt.Errorf("functions[%d]: invalid name %q", i, f.Name))
		}
		if names[f.Name] {
			errs = append(errs, fmt.Errorf("functions[%d]: duplicate name %q", i, f.Name))
		}
		names[f.Name] = true
		if f.Invoke != "" {
			if _, ok := BuiltinHandler(f.Invoke); !ok {
				errs = append(errs, fmt.Errorf("function %s: unknown invoke %q (want env, echo or dial:VAR)", f.Name, f.Invoke))
			}
		}
		if f.VPC != nil && len(f.VPC.SubnetIDs) == 0 {
			errs = append(errs, fmt.Errorf("function %s: vpc without subnetIds", f.Name))
		}
	}
	for name, st := range seed.Stacks {
		for i, res := range st.Resources {
			if res.LogicalID == "" || res.Type == "" {
				errs = append(errs, fmt.Errorf("stack %s: resources[%d]: logicalId and type are required", name, i))
			}
		}
	}
	for i, sn := range seed.Subnets {
		if sn.ID == "" || sn.VpcID == "" {
			errs = append(errs, fmt.Errorf("subnets[%d]: id and vpcId are required", i))
		}
	}
	for i, rt := range seed.RouteTables {
		if rt.ID == "" || rt.VpcID == "" {
			errs = append(errs, fmt.Errorf("routeTables[%d]: id and vpcId are required", i))
		}
		for j, r := range rt.Routes {
			if r.State != "" && r.State != "active" && r.State != "blackhole" {
				errs = append(errs, fmt.Errorf("routeTables[%d].routes[%d]: state %q: want active or blackhole", i, j, r.State))
			}
		}
	}
	for i, v := range seed.VPCs {
		if err := v.validate(); err != nil {
			errs = append(errs, fmt.Errorf("vpcs[%d]: %w", i, err))
		}
	}
	for i, g := range seed.SecurityGroups {
		if err := g.validate(); err != nil {
			errs = append(errs, fmt.Errorf("securityGroups[%d]: %w", i, err))
		}
	}
	return errors.Join(errs...)
}

// Apply adds the seed's functions, stacks, subnets, route tables, VPCs and
// security groups, replacing those with the same names, and takes its region and account
// when set.
func (s *Server) Apply(seed Seed) error {
	if err := seed.validate(); err != nil {
		return fmt.Errorf("applying seed: %w", err)
	}
	s.mu.Lock()
	if seed.Region != "" {
		s.region = seed.Region
	}
	if seed.Account != "" {
		s.account = seed.Account
	}
	s.mu.Unlock()
	for _, sn := range seed.Subnets {
		s.PutSubnet(sn)
	}
	for _, rt := range seed.RouteTables {
		s.PutRouteTable(rt)
	}
	for _, v := range seed.VPCs {
		s.PutVPC(v)
	}
	for _, g := range seed.SecurityGroups {
		s.PutSecurityGroup(g)
	}
	for name, st := range seed.Stacks {
		s.PutStack(name, st)
	}
	for _, f := range seed.Functions {
		s.PutFunction(f)
	}
	return nil
}
