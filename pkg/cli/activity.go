package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/stptunnel/stptunnel/pkg/doc"
)

// activityLine is one tunnel's activity in a few words:
// "2 open · 41 total · ↓ 1.2 MB ↑ 14 MB · last 3 s ago". ↓ is what reached the local service, ↑ what it sent back.
func activityLine(a *doc.Activity, now time.Time) string {
	if a == nil {
		return "activity not counted (an external bore relays the bytes)"
	}
	if a.Total == 0 && a.LocalErrors == 0 {
		return "no connection yet"
	}
	parts := []string{fmt.Sprintf("%d open", a.Open), fmt.Sprintf("%d total", a.Total),
		fmt.Sprintf("↓ %s ↑ %s", byteSize(a.BytesIn), byteSize(a.BytesOut))}
	if last, err := time.Parse(time.RFC3339, a.Last); err == nil {
		parts = append(parts, "last "+ago(now.Sub(last)))
	}
	if a.LocalErrors > 0 {
		parts = append(parts, fmt.Sprintf("%d refused by the local service", a.LocalErrors))
	}
	return strings.Join(parts, " · ")
}

// byteSize is n in B, kB, MB or GB (powers of 1000, one decimal under 10).
func byteSize(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, suffix := float64(n), ""
	for _, s := range []string{"kB", "MB", "GB", "TB"} {
		v /= unit
		suffix = s
		if v < unit {
			break
		}
	}
	if v < 10 {
		return fmt.Sprintf("%.1f %s", v, suffix)
	}
	return fmt.Sprintf("%.0f %s", v, suffix)
}

// ago is a duration as people say it: "3 s ago", "2 min ago", "1 h ago".
func ago(d time.Duration) string {
	switch {
	case d < time.Second:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%d s ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d.Minutes()))
	}
	return fmt.Sprintf("%d h ago", int(d.Hours()))
}

// activityWatch renders the activity a session reports once a second: on a terminal, one live status line per
// tunnel; elsewhere, a line when a tunnel carries its first connection and when the local service refuses one.
type activityWatch struct {
	seen map[string]doc.Activity // by resource: what was last reported
}

func (a *app) reportActivity(tunnels []doc.Tunnel) {
	if a.activity.seen == nil {
		a.activity.seen = map[string]doc.Activity{}
	}
	now := time.Now()
	var lines []string
	width := 0
	for _, t := range tunnels {
		width = max(width, len(t.Resource))
	}
	for _, t := range tunnels {
		lines = append(lines, fmt.Sprintf("%-*s  %s  %s", width, t.Resource, t.Public, activityLine(t.Activity, now)))
		if t.Activity == nil {
			continue
		}
		before := a.activity.seen[t.Resource]
		if t.Activity.Total > 0 && before.Total == 0 && !a.ui.live {
			a.ui.ok("Tunnel %s carried its first connection", t.Resource)
		}
		if t.Activity.LocalErrors > before.LocalErrors {
			// Said on a terminal too: the first thing a user needs to know is that the database is down.
			a.ui.warn("Tunnel %s: the local service at %s refused %s: %s", t.Resource, t.Local,
				plural(int(t.Activity.LocalErrors-before.LocalErrors), "connection"), t.Activity.LastLocalError)
		}
		a.activity.seen[t.Resource] = *t.Activity
	}
	a.ui.setStatus(statusTunnels, lines...)
}

// activityTable is the tunnels' activity as a GitHub job summary table.
func activityTable(tunnels []doc.Tunnel) *mdTable {
	t := &mdTable{title: "stptunnel: what the tunnels carried", headers: []string{"Resource", "Public", "Connections", "To the local service", "From it", "Refused locally"}}
	for _, tn := range tunnels {
		a := tn.Activity
		if a == nil {
			t.rows = append(t.rows, []string{tn.Resource, code(tn.Public), "not counted (external bore)", "", "", ""})
			continue
		}
		t.rows = append(t.rows, []string{tn.Resource, code(tn.Public), fmt.Sprint(a.Total), byteSize(a.BytesIn), byteSize(a.BytesOut), fmt.Sprint(a.LocalErrors)})
	}
	return t
}
