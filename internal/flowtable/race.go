//go:build race

package flowtable

// raceEnabled is set in race-detector builds: the table then keeps its
// slots on the Go heap, where the detector watches them, and tests too
// slow under the detector skip.
const raceEnabled = true
