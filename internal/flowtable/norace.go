//go:build !race

package flowtable

// raceEnabled is set in race-detector builds (see race.go).
const raceEnabled = false
