package main

import (
	"strings"
	"testing"
)

// TestDailyOrgConfig: limits.daily_org defaults to 0 (none), reaches the
// store's policy, and a negative value is refused at start, naming the
// key.
func TestDailyOrgConfig(t *testing.T) {
	cfg := DefaultConfig()
	if cfg.Limits.DailyOrg != 0 || cfg.policy().DailyOrg != 0 {
		t.Errorf("default daily_org %d", cfg.Limits.DailyOrg)
	}
	cfg.Limits.DailyOrg = 5000
	if p := cfg.policy(); p.DailyOrg != 5000 {
		t.Errorf("policy DailyOrg %d", p.DailyOrg)
	}
	if p := cfg.validateOrgLimit(); len(p) != 0 {
		t.Errorf("5000 refused: %v", p)
	}
	cfg.Limits.DailyOrg = -1
	if p := strings.Join(cfg.validate(), "\n"); !strings.Contains(p, "limits.daily_org: -1 is out of range") {
		t.Errorf("a negative daily_org: %q", p)
	}
}
