package detect

import (
	"maps"
	"slices"

	"github.com/stptunnel/stptunnel/pkg/connstr"
	"github.com/stptunnel/stptunnel/pkg/doc"
	"github.com/stptunnel/stptunnel/pkg/lambdaenv"
)

// Map is an explicit binding given with `--map ENV=RESOURCE`.
type Map struct {
	Env      string
	Resource string
}

// conventionSuffixes are the variable names Stacktape gives a resource's connection details, in the order
// their bindings are listed.
var conventionSuffixes = []string{"_CONNECTION_STRING", "_HOST", "_PORT", "_ENDPOINT"}

// ConventionNames are the variables Stacktape's convention gives resource name: STP_<SNAKE_NAME>_CONNECTION_STRING,
// _HOST, _PORT and _ENDPOINT.
func ConventionNames(name string) []string {
	prefix := "STP_" + connstr.SnakeName(name)
	out := make([]string, len(conventionSuffixes))
	for i, s := range conventionSuffixes {
		out[i] = prefix + s
	}
	return out
}

// binder holds what binding needs about the resources, worked out once for every function.
type binder struct {
	resources []doc.Resource
	addrs     []connstr.HostPort // the local address of resources[i]; zero when it has none
	maps      []Map
}

func newBinder(resources []doc.Resource, maps []Map) *binder {
	b := &binder{resources: resources, maps: maps, addrs: make([]connstr.HostPort, len(resources))}
	for i, r := range resources {
		if hp, err := lambdaenv.LocalAddress(r); err == nil {
			b.addrs[i] = hp
		}
	}
	return b
}

// Bind returns the bindings of a function whose variables are env: convention first (resources in order, then
// _CONNECTION_STRING, _HOST, _PORT, _ENDPOINT), then maps in order, then value matches (variables in name order,
// each to the first resource whose local address it holds). A variable is bound once: the first way wins.
func Bind(env map[string]string, resources []doc.Resource, maps []Map) []doc.Binding {
	return newBinder(resources, maps).bind(env)
}

func (b *binder) bind(env map[string]string) []doc.Binding {
	var out []doc.Binding
	bound := map[string]bool{}
	add := func(key, resource, via string) {
		if _, ok := env[key]; ok && !bound[key] {
			bound[key] = true
			out = append(out, doc.Binding{Env: key, Resource: resource, Via: via})
		}
	}
	for _, r := range b.resources {
		for _, key := range ConventionNames(r.Name) {
			add(key, r.Name, doc.ViaConvention)
		}
	}
	for _, m := range b.maps {
		add(m.Env, m.Resource, doc.ViaMap)
	}
	for _, key := range slices.Sorted(maps.Keys(env)) {
		for i, r := range b.resources {
			if b.addrs[i].Port != 0 && connstr.References(env[key], b.addrs[i], connstr.DefaultPort(r.Type)) {
				add(key, r.Name, doc.ViaValue)
				break
			}
		}
	}
	return out
}
