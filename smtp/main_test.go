package smtp

import (
	"os"
	"testing"

	"github.com/securetextd/securetextd/internal/pgtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.StopShared()
	os.Exit(code)
}
