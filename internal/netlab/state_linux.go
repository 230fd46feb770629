package netlab

import (
	"log/slog"
	"os/exec"
	"sync"
)

// child is one running child process.
type child struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has been reaped
	err  error         // Wait's result, valid after done
}

func (c *child) stop() {
	c.cmd.Process.Kill()
	<-c.done
}

// labState is the mutable part of a Lab.
type labState struct {
	log *slog.Logger

	// ctl serialises StartServer and StopServer, so concurrent calls
	// for one server cannot start two children.
	ctl sync.Mutex

	mu     sync.Mutex
	closed bool
	// made lists the namespaces created so far, in creation order.
	made []string
	// procs holds the running child of each server.
	procs map[int]*child
	// logs keeps every child's output per host name.
	logs map[string]*syncBuffer
	// external holds the hosts added by AddExternal.
	external []*Host
}
