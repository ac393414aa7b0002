package session

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/user"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/stptunnel/stptunnel/pkg/detect"
	"github.com/stptunnel/stptunnel/pkg/doc"
	"github.com/stptunnel/stptunnel/pkg/lambdaenv"
	"github.com/stptunnel/stptunnel/pkg/tunnel"
)

// Working as a team (CONTRACT.md §5): every patch leaves a session marker on the function, so a second developer's
// session sees who holds it (in-use), env status lists the functions held, and env restore puts a function back
// from its marker on any machine.

// ProbeTimeout bounds the TCP dial that tells whether a session's tunnel still answers.
const ProbeTimeout = 2 * time.Second

// NewSession is a fresh session: a random 12-hex-digit id, who (user@host, WhoAmI when empty) and now.
func NewSession(who string, now time.Time) doc.Session {
	var b [6]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails on the supported platforms
	if who == "" {
		who = WhoAmI()
	}
	return doc.Session{ID: hex.EncodeToString(b[:]), By: who, Started: now.UTC().Format(time.RFC3339)}
}

// WhoAmI is user@host for the marker's "by": the login name and the host name, whichever can be found.
func WhoAmI() string {
	name := os.Getenv("USER")
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	if i := strings.LastIndexAny(name, `\`); i >= 0 { // DOMAIN\user on Windows
		name = name[i+1:]
	}
	if name == "" {
		name = "unknown"
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	return name + "@" + host
}

// sessionOf returns the document's session. When it has none, the session is the journal's (the state dir's
// session, still holding functions, continues) or a new one (made with by); it is added to the document, unless
// this is a dry run, which patches nothing and leaves the document as it is.
func sessionOf(d *doc.Document, by string, dryRun bool, journal *lambdaenv.Journal) (doc.Session, error) {
	s, ok, err := d.Session()
	if err != nil {
		return doc.Session{}, asInput(err)
	}
	if ok && s.ID != "" {
		return s, nil
	}
	if js, ok := journalSession(journal); ok {
		s = js
	} else {
		s = NewSession(by, time.Now())
	}
	if dryRun {
		return s, nil
	}
	return s, d.Set(doc.FieldSession, s)
}

func journalSession(j *lambdaenv.Journal) (doc.Session, bool) {
	if j == nil {
		return doc.Session{}, false
	}
	s, ok := j.Session()
	return doc.Session{ID: s.ID, By: s.By, Started: s.At}, ok
}

func markerSession(s doc.Session) lambdaenv.Session {
	return lambdaenv.Session{ID: s.ID, By: s.By, At: s.Started}
}

// probe dials every address at once and reports which accepted a TCP connection within ProbeTimeout: whether a
// session's tunnels still answer. A bore server closes a tunnel's public port when its client goes, so a session
// that died answers no more.
func probe(ctx context.Context, addrs []string) map[string]bool {
	alive := make(map[string]bool, len(addrs))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, a := range addrs {
		if _, done := alive[a]; done {
			continue
		}
		alive[a] = false
		wg.Add(1)
		go func() {
			defer wg.Done()
			if tunnel.Probe(ctx, a, ProbeTimeout) != nil {
				return
			}
			mu.Lock()
			alive[a] = true
			mu.Unlock()
		}()
	}
	wg.Wait()
	return alive
}

// probes is the marker's pub with whether each answers, and whether any does.
func probes(pub []string, alive map[string]bool) ([]doc.Probe, bool) {
	out := []doc.Probe{}
	any := false
	for _, a := range pub {
		out = append(out, doc.Probe{Public: a, Alive: alive[a]})
		any = any || alive[a]
	}
	return out, any
}

// publics gathers the pub of every marker, for one probe of them all.
func publics(markers []*lambdaenv.Marker) []string {
	var out []string
	for _, m := range markers {
		if m != nil {
			out = append(out, m.Pub...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// InUse: a function is skipped because another session holds it. Message says who, since when, whether that
// session's tunnels answer and the two ways out; it is also the skip's message in the document.
type InUse struct {
	Function string
	// Holder is the other session's marker (nil when it cannot be read). It carries deployed values: the command
	// line masks them and never prints it.
	Holder  *lambdaenv.Marker
	Tunnels []doc.Probe
	Alive   bool
	Message string
}

func (InUse) event() {}

// inUseMessage is what a user needs to know of a function another session holds, and what to do about it.
func inUseMessage(function string, held lambdaenv.InUse, tunnels []doc.Probe, alive bool) string {
	if held.Marker == nil {
		return fmt.Sprintf("its %s cannot be read (%v): restore it with the stptunnel that patched it, or remove the variable once the function is checked",
			lambdaenv.MarkerKey, held.Err)
	}
	m := held.Marker
	var state string
	switch {
	case len(tunnels) == 0:
		state = "it records no tunnel"
	case alive:
		state = "its tunnels answer (" + addresses(tunnels, true) + ")"
	default:
		state = "its tunnels do not answer (" + addresses(tunnels, false) + "): that session looks dead"
	}
	return fmt.Sprintf("in use by %s (session %s) since %s; %s. If that session is dead, `stptunnel env restore --function %s` "+
		"puts the function back from its marker; to share it, patch with --take-over", m.By, m.ID, m.At, state, function)
}

func addresses(tunnels []doc.Probe, alive bool) string {
	var out []string
	for _, t := range tunnels {
		if t.Alive == alive {
			out = append(out, t.Public)
		}
	}
	return strings.Join(out, ", ")
}

// reportInUse probes the tunnels of the sessions holding the functions of held, reports an InUse event for each
// and returns the message of each, by function.
func reportInUse(ctx context.Context, held []lambdaenv.InUse, env Env) map[string]string {
	if len(held) == 0 {
		return nil
	}
	var markers []*lambdaenv.Marker
	for _, h := range held {
		markers = append(markers, h.Marker)
	}
	alive := probe(ctx, publics(markers))
	msgs := map[string]string{}
	for _, h := range held {
		var tunnels []doc.Probe
		var any bool
		if h.Marker != nil {
			tunnels, any = probes(h.Marker.Pub, alive)
		}
		msg := inUseMessage(h.Function, h, tunnels, any)
		msgs[h.Function] = msg
		env.report(InUse{Function: h.Function, Holder: h.Marker, Tunnels: tunnels, Alive: any, Message: msg})
	}
	return msgs
}

// listScope lists the functions of a scope (detect's listing) in region (the AWS configuration's when ""), and
// returns the region used. A --stack that does not exist is bad input.
func listScope(ctx context.Context, region string, scope detect.Scope, env Env) ([]detect.Listed, []doc.Skip, string, error) {
	cfg, err := env.aws(ctx, region)
	if err != nil {
		return nil, nil, "", err
	}
	listed, skips, err := detect.List(ctx, detect.NewClients(cfg), cfg.Region, scope)
	var notFound *detect.StackNotFoundError
	if errors.As(err, &notFound) {
		return nil, nil, "", badInput("--stack %s: no such stack in %s", notFound.Stack, cfg.Region)
	}
	if err != nil {
		return nil, nil, "", err
	}
	return listed, skips, cfg.Region, nil
}

// unreadable is the warning about a listed function whose variables cannot be read.
func unreadable(name string) Warning {
	return Warning{Message: fmt.Sprintf("%s: its variables cannot be read (KMS): it cannot be checked for a session marker", name)}
}
