package smtp

import (
	"os"
	"testing"

	"github.com/securetextd/securetextd/internal/pgtest"
)

// TestMain stops the private PostgreSQL server that the tests started
// when they ran on PostgreSQL (internal/storetest).
func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.StopShared()
	os.Exit(code)
}
