//go:build race

package flowtable

// raceEnabled skips tests too slow under the race detector.
const raceEnabled = true
