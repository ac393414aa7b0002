//go:build linux

package ptytest

import (
	"io"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/term"
)

func TestProgramSeesATerminal(t *testing.T) {
	controller, terminal, err := Open()
	if err != nil {
		t.Skipf("no pseudo-terminal here: %v", err)
	}
	defer controller.Close()
	if !term.IsTerminal(int(terminal.Fd())) {
		t.Fatal("the terminal side is not a terminal")
	}
	cmd := exec.Command("sh", "-c", `if [ -t 1 ]; then echo tty; else echo notty; fi`)
	cmd.Stdout = terminal
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	terminal.Close()
	out, _ := io.ReadAll(controller) // EIO once the terminal side is closed: the end of the screen
	if strings.TrimSpace(string(out)) != "tty" {
		t.Fatalf("the program saw %q, want tty", out)
	}
}
