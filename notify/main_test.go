package notify

import (
	"testing"

	"github.com/securetextd/securetextd/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }
