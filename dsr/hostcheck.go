package dsr

import "fmt"

// HostSeverity says how bad a HostProblem is. The zero value is invalid.
type HostSeverity uint8

const (
	// HostWarning: forwarding works, but something is likely to go wrong.
	HostWarning HostSeverity = iota + 1
	// HostError: the balancer's host will mishandle VIP traffic.
	HostError
)

// String returns "warning" or "error".
func (s HostSeverity) String() string {
	switch s {
	case HostWarning:
		return "warning"
	case HostError:
		return "error"
	}
	return fmt.Sprintf("HostSeverity(%d)", uint8(s))
}

// HostProblem is one way the balancer's own host would interfere with
// forwarding, with the command that fixes it.
type HostProblem struct {
	Severity HostSeverity
	// Problem says what is wrong and why it matters.
	Problem string
	// Fix is the exact shell command that removes the problem.
	Fix string
}

// String formats the problem for a log line or a terminal.
func (p HostProblem) String() string {
	return fmt.Sprintf("%s: %s (fix: %s)", p.Severity, p.Problem, p.Fix)
}
