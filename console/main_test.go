package console

import (
	"testing"

	"github.com/securetextd/securetextd/internal/clamdtest"
	"github.com/securetextd/securetextd/internal/pgtest"
)

// TestMain stops the private PostgreSQL server that the tests start when
// they run on PostgreSQL (SECURETEXTD_TEST_ENGINE=postgres), and the
// private clamd of the scanning test.
func TestMain(m *testing.M) { pgtest.Main(m, clamdtest.StopShared) }
