//go:build race

package bore

// The race detector allows 8128 live goroutines; each tunnelled connection uses about eight.
const raceEnabled = true
