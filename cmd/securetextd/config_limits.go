package main

import "fmt"

// validateOrgLimit checks limits.daily_org, the organization's daily cap
// (store.Policy.DailyOrg); 0, the default, is none.
func (c *Config) validateOrgLimit() []string {
	if n := c.Limits.DailyOrg; n < 0 || n > 100_000_000 {
		return []string{fmt.Sprintf("limits.daily_org: %d is out of range (0 for no limit, up to 100000000)", n)}
	}
	return nil
}
