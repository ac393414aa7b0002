//go:build linux

// Package ptytest opens pseudo-terminals for tests: a program whose stdout or stderr is the terminal's side
// behaves as it does on a developer's screen (colour, live status lines, documents kept off the screen), and the
// test reads what the screen would show from the other side. Linux only, with golang.org/x/sys/unix; no new
// dependency.
package ptytest

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// Open returns a new pseudo-terminal: the controller (the test reads the screen from it) and the terminal (a
// program's stdout or stderr). Close both.
func Open() (controller, terminal *os.File, err error) {
	controller, err = os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("opening /dev/ptmx: %w", err)
	}
	fd := int(controller.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		controller.Close()
		return nil, nil, fmt.Errorf("unlocking the terminal: %w", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		controller.Close()
		return nil, nil, fmt.Errorf("naming the terminal: %w", err)
	}
	terminal, err = os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		controller.Close()
		return nil, nil, fmt.Errorf("opening the terminal: %w", err)
	}
	// Raw output: the test sees the bytes the program wrote (no \n → \r\n translation).
	if t, err := unix.IoctlGetTermios(int(terminal.Fd()), unix.TCGETS); err == nil {
		t.Oflag &^= unix.OPOST
		_ = unix.IoctlSetTermios(int(terminal.Fd()), unix.TCSETS, t)
	}
	return controller, terminal, nil
}
