// Package bench measures the dsrlb data path against the baselines it must
// be judged by, on one veth topology, with the same traffic, in one run.
//
// The project's performance claims are ratios: CPU time per forwarded
// packet, saturation rate and loss of the Balancer, on packet sockets
// (dsr.PacketForwarder) and on the XDP data plane (dsr.XDPForwarder, whose
// program forwards in the kernel while the Go process runs the control
// plane), divided by those of
//
//   - a bare batched recvmmsg/sendmmsg MAC-swap reflector built on the same
//     packet socket code (internal/afpacket) with the same kernel filter, so
//     that the only difference is the Balancer's per-frame work;
//   - a bare XDP_TX MAC-swap reflector, the in-kernel floor;
//   - the kernel's own IP forwarding of the same stream.
//
// Candidates run interleaved (for each repetition, each candidate in turn),
// so slow drifts of a shared machine hit all of them alike, and results are
// medians with min-max over the repetitions. Each sample waits for the two
// benchmark CPUs to be quiet, records how much of the forwarder CPU other
// work took meanwhile, and is measured again when that share (or a
// starved generator) makes it suspect.
//
// Per candidate: a warmup, a capacity search (paced steps of rising rate
// until frames are lost, refined by bisection; the capacity is the highest
// delivered rate), a flood (the generator flat out: behaviour under
// overload, which on veth is not the capacity, because the flood itself
// takes CPU from the forwarder) and a paced phase at a fraction of its own
// capacity. Then every candidate of the repetition runs once more at one
// common rate, a fraction of the lower packet-socket capacity: CPU time
// per frame falls steeply with the rate (more frames per wake-up), so only
// at the same offered load do candidates compare on their work alone. That
// common-rate CPU time per frame is the headline.
//
// The XDP balancer's CPU time is measured as the XDP reflector's (the
// forwarder veth's NAPI thread, where its program runs) plus its process's
// (the control plane), reported apart too; a phase in which its program
// passed most frames up to the Go path instead of forwarding them fails
// the run, saying why. Its targets are stated against the XDP reflector
// (see Targets).
//
// Besides CPU time, the user-space candidates report how they batched:
// frames per receive and transmit call (counted at the same level in
// both) and context switches (wake-ups) per frame, which is what explains
// most differences between them on this kind of machine.
//
// Topology: two throw-away network namespaces joined by one veth pair. The
// generator namespace transmits with BPF_PROG_RUN in live-frame mode
// (the kernel emits frames straight into the veth, far faster than any
// candidate forwards; every frame's headers are rewritten from the
// template, because live-frame pages are recycled with whatever the
// receiver wrote into them) and counts what comes back with an XDP
// program; the
// forwarder namespace runs the candidate one-armed, as an L2 DSR balancer
// runs. Both veth ends use threaded NAPI: the forwarder's receive kthread
// and candidate process are pinned to one CPU, the generator, its receive
// kthread and the sink to the other, and the forwarder's cost is the CPU
// time of exactly those forwarder-side tasks. User-space candidates run
// as SCHED_BATCH, so that, as with softirq receive processing on a real
// host, their wake-ups do not preempt the receive thread that feeds them.
//
// Everything needs Linux and root; elsewhere Run returns ErrUnsupported.
// Binaries that call Run must call RunChildIfRequested first thing in main
// or TestMain, because the user-space candidates run as child processes.
package bench
