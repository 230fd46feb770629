package main

import (
	"fmt"
	"io"

	"github.com/dsrlb/dsrlb/internal/version"
)

// isVersion reports whether the command line asks only for the version:
// "-version", "--version" or "version".
func isVersion(args []string) bool {
	if len(args) != 1 {
		return false
	}
	switch args[0] {
	case "-version", "--version", "version":
		return true
	}
	return false
}

// printVersion prints the module version and VCS revision the program was
// built from.
func printVersion(w io.Writer) int {
	fmt.Fprintln(w, "realserver", version.Get())
	return exitOK
}
