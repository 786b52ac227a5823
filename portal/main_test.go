package portal

import (
	"os"
	"testing"

	"github.com/securetextd/securetextd/internal/pgtest"
)

// TestMain stops the private PostgreSQL server that the tests start when
// they run on PostgreSQL (SECURETEXTD_TEST_ENGINE=postgres, storetest).
func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.StopShared()
	os.Exit(code)
}
