package retention

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestKeepPolicy_Apply(t *testing.T) {
	base := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	var items []Dated
	// Every 6 hours over 10 days, newest first: 40 snapshots.
	for i := 0; i < 40; i++ {
		items = append(items, Dated{ID: strconv.Itoa(i), CreatedAt: base.Add(-time.Duration(i) * 6 * time.Hour)})
	}
	now := base.Add(time.Hour)
	ids := func(ds []Decision) string {
		var s []string
		for _, d := range ds {
			s = append(s, d.ID)
		}
		return strings.Join(s, ",")
	}
	cases := []struct {
		name string
		p    KeepPolicy
		keep string
	}{
		{"Last3", KeepPolicy{Last: 3}, "0,1,2"},
		{"Within13h", KeepPolicy{Within: 13 * time.Hour}, "0,1,2"},
		{"Daily2", KeepPolicy{Daily: 2}, "0,3"},    // the 20th's newest (12:00), then the 19th's (18:00)
		{"Hourly2", KeepPolicy{Hourly: 2}, "0,1"},  // one per distinct hour
		{"Weekly2", KeepPolicy{Weekly: 2}, "0,19"}, // W47 (Mon Nov 16 to 22), then W46's newest (Nov 15 18:00)
		{"Union", KeepPolicy{Last: 2, Daily: 2}, "0,1,3"},
		{"OldWithinKeepsNewest", KeepPolicy{Within: time.Minute}, "0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			keep, remove := c.p.Apply(items, now)
			if got := ids(keep); got != c.keep {
				t.Fatalf("keep %s, want %s", got, c.keep)
			}
			if len(keep)+len(remove) != len(items) {
				t.Fatal("items lost")
			}
		})
	}
	if err := (KeepPolicy{}).Check(); err == nil {
		t.Fatal("an empty policy must be refused")
	}
	if err := (KeepPolicy{Last: -1}).Check(); err == nil {
		t.Fatal("a negative count must be refused")
	}
}

func TestKeepPolicy_Monthly(t *testing.T) {
	var items []Dated
	// One snapshot every 10 days from 2026-08-01 to 2026-11-19: 12 of them.
	for i := 0; i < 12; i++ {
		items = append(items, Dated{ID: strconv.Itoa(i), CreatedAt: time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, 10*i)})
	}
	keep, _ := KeepPolicy{Monthly: 3}.Apply(items, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	var got []string
	for _, d := range keep {
		got = append(got, d.ID+"="+d.CreatedAt.Format("01-02"))
	}
	// The newest of November (11-19), October (10-30) and September (09-30).
	if strings.Join(got, " ") != "11=11-19 9=10-30 6=09-30" {
		t.Fatalf("monthly 3 kept %v", got)
	}
	if err := (KeepPolicy{Monthly: -1}).Check(); err == nil {
		t.Fatal("a negative count must be refused")
	}
}
