package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
)

// github speaks to the GitHub Actions runner when GITHUB_ACTIONS=true: workflow commands (::add-mask::,
// ::warning::, ::error::) on the command stream, results appended to $GITHUB_OUTPUT and a summary to
// $GITHUB_STEP_SUMMARY. The runner reads workflow commands from stdout and stderr alike; stdout carries only the
// document, so they go to stderr. A nil *github is valid and does nothing, so callers never branch on it.
type github struct {
	mu         sync.Mutex
	w          io.Writer
	outputPath string
	summary    string
	masked     map[string]bool
}

// newGitHub returns nil unless the environment says we run under GitHub Actions.
func newGitHub(getenv func(string) string, w io.Writer) *github {
	if getenv("GITHUB_ACTIONS") != "true" {
		return nil
	}
	return &github{w: w, outputPath: getenv("GITHUB_OUTPUT"), summary: getenv("GITHUB_STEP_SUMMARY"), masked: map[string]bool{}}
}

// escapeData escapes a workflow command's data as the runner expects.
func escapeData(s string) string {
	s = strings.ReplaceAll(s, "%", "%25")
	s = strings.ReplaceAll(s, "\r", "%0D")
	return strings.ReplaceAll(s, "\n", "%0A")
}

// mask tells the runner to hide value in every later log line. Multi-line values are masked line by line.
func (g *github) mask(value string) {
	if g == nil || value == "" {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, line := range strings.Split(value, "\n") {
		if line == "" || g.masked[line] {
			continue
		}
		g.masked[line] = true
		fmt.Fprintf(g.w, "::add-mask::%s\n", escapeData(line))
	}
}

// warning emits an annotation. The message must already be redacted.
func (g *github) warning(msg string) {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	fmt.Fprintf(g.w, "::warning::%s\n", escapeData(msg))
}

// errorf emits an error annotation. The message must already be redacted.
func (g *github) errorf(msg string) {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	fmt.Fprintf(g.w, "::error::%s\n", escapeData(msg))
}

// output appends name=value to $GITHUB_OUTPUT, with the heredoc form for values that span lines.
func (g *github) output(name, value string) error {
	if g == nil || g.outputPath == "" {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	var entry string
	if strings.ContainsAny(value, "\r\n") {
		delim := "STPTUNNEL_EOF"
		for strings.Contains(value, delim) {
			delim += "_"
		}
		entry = fmt.Sprintf("%s<<%s\n%s\n%s\n", name, delim, value, delim)
	} else {
		entry = fmt.Sprintf("%s=%s\n", name, value)
	}
	return appendFile(g.outputPath, entry)
}

// summaryAppend appends Markdown to the job summary.
func (g *github) summaryAppend(markdown string) error {
	if g == nil || g.summary == "" {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return appendFile(g.summary, markdown)
}

func appendFile(path, s string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if _, err := f.WriteString(s); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Close()
}
