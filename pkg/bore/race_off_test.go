//go:build !race

package bore

const raceEnabled = false
