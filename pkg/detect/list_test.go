package detect_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/stptunnel/stptunnel/pkg/awssim"
	"github.com/stptunnel/stptunnel/pkg/connstr"
	"github.com/stptunnel/stptunnel/pkg/detect"
	"github.com/stptunnel/stptunnel/pkg/doc"
	"github.com/stptunnel/stptunnel/pkg/lambdaenv"
)

// markerFor is the marker a session leaves on a function after pointing key, which held before, at after.
func markerFor(key, before, after string) string {
	return `{"v":1,"id":"aaaaaaaaaaaa","by":"ana@laptop","at":"2026-03-01T10:00:00Z","pub":["bore.pub:40001"],"keys":{"` +
		key + `":{"b":"` + before + `","h":"` + lambdaenv.Digest(after) + `"}}}`
}

// A function another session holds is bound by its deployed values, which its marker records: a variable that
// named the local address before the session is still found by value, so env patch can say who holds it.
func TestRunBindsAHeldFunctionAsDeployed(t *testing.T) {
	patched := "postgres://app:pw@bore.pub:40001/app"
	sim := newSim(t, awssim.Seed{Region: "eu-west-1", Functions: []awssim.Function{
		{Name: "api", Env: map[string]string{"DATABASE_URL": patched, lambdaenv.MarkerKey: markerFor("DATABASE_URL", db.URL, patched)}},
		{Name: "stale", Env: map[string]string{"DATABASE_URL": "postgres://app:pw@elsewhere:5432/app",
			lambdaenv.MarkerKey: markerFor("DATABASE_URL", db.URL, patched)}},
	}})
	res, err := detect.Run(ctxT(t), clientsFor(sim.URL()), detect.Options{Region: "eu-west-1",
		Resources: []doc.Resource{db}, VPC: detect.VPCAllow, Public: connstr.HostPort{Host: "bore.pub", Port: 65535}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Functions) != 1 || res.Functions[0].Name != "api" || len(res.Functions[0].Bindings) != 1 ||
		res.Functions[0].Bindings[0] != (doc.Binding{Env: "DATABASE_URL", Resource: "postgresDb", Via: doc.ViaValue, Action: "in-place"}) {
		t.Fatalf("functions = %+v; want api bound by value (stale's variable changed since its marker)", res.Functions)
	}
}

func TestListSelectsTheScope(t *testing.T) {
	sim := newSim(t, awssim.Seed{Region: "eu-west-1",
		Functions: []awssim.Function{
			{Name: "shop-api", Env: map[string]string{"A": "1"}},
			{Name: "shop-jobs", Env: map[string]string{"B": "2"}},
			{Name: "blog", Env: map[string]string{"C": "3"}},
		},
		Stacks: map[string]awssim.Stack{"shop": {Resources: []awssim.StackResource{
			{LogicalID: "Api", PhysicalID: "shop-api", Type: "AWS::Lambda::Function"}}}},
	})
	names := func(ls []detect.Listed) []string {
		var out []string
		for _, l := range ls {
			out = append(out, l.Name)
		}
		slices.Sort(out)
		return out
	}
	for _, c := range []struct {
		scope detect.Scope
		want  []string
		skips int
	}{
		{detect.Scope{Prefix: "shop-"}, []string{"shop-api", "shop-jobs"}, 0},
		{detect.Scope{Stack: "shop"}, []string{"shop-api"}, 0},
		{detect.Scope{Functions: []string{"blog", "gone"}}, []string{"blog"}, 1},
	} {
		got, skips, err := detect.List(ctxT(t), clientsFor(sim.URL()), "eu-west-1", c.scope)
		if err != nil || !slices.Equal(names(got), c.want) || len(skips) != c.skips {
			t.Fatalf("List(%+v) = %v, %+v, %v; want %v", c.scope, names(got), skips, err, c.want)
		}
		for _, l := range got {
			if l.ARN == "" || len(l.Env) != 1 {
				t.Fatalf("listed %+v", l)
			}
		}
	}
	_, _, err := detect.List(ctxT(t), clientsFor(sim.URL()), "eu-west-1", detect.Scope{Stack: "nope"})
	var nf *detect.StackNotFoundError
	if !errors.As(err, &nf) {
		t.Fatalf("missing stack: %v", err)
	}
}
