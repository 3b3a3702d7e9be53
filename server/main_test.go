package server

import (
	"os"
	"testing"
)

// TestMain poisons released inflate buffers for every test of the package,
// so that any use of a gzip body after its release shows as garbage.
func TestMain(m *testing.M) {
	poisonReleased.Store(true)
	os.Exit(m.Run())
}
