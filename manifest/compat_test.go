package manifest

import (
	"errors"
	"testing"
)

func TestCheckVersion(t *testing.T) {
	cases := []struct {
		snap, target string
		ok           bool
	}{
		{"3.5.1", "3.5.1", true},
		{"3.5.1", "3.5.9", true},  // any patch
		{"3.5.9", "3.5.1", true},  // patch downgrade is fine
		{"3.5.1", "3.6.0", true},  // minor upgrade
		{"3.6.0", "3.5.9", false}, // minor downgrade
		{"3.5.1", "4.5.1", false}, // major differs
		{"4.0.0", "3.9.0", false},
		{"3.5", "3.5.2", true},
		{"3.5.1-rc1", "3.5.1", true},
		{"", "", true},
		{"3.5.1", "", false},
		{"", "3.5.1", false},
		{"x.y", "3.5.1", false},
	}
	for _, c := range cases {
		err := CheckVersion(c.snap, c.target)
		if (err == nil) != c.ok {
			t.Errorf("CheckVersion(%q, %q) = %v, want ok=%v", c.snap, c.target, err, c.ok)
		}
		if err != nil && !errors.Is(err, ErrIncompatible) {
			t.Errorf("CheckVersion error %v does not wrap ErrIncompatible", err)
		}
	}
}

func TestCheckCompatible(t *testing.T) {
	m := validManifest()
	ok := Target{AppVersion: "3.5.1", Nodes: []string{"local"}}
	if err := CheckCompatible(m, ok, false); err != nil {
		t.Fatal(err)
	}
	for name, tg := range map[string]Target{
		"Topology":  {AppVersion: "3.5.1", Nodes: []string{"local", "n2"}},
		"OtherNode": {AppVersion: "3.5.1", Nodes: []string{"n2"}},
		"Key":       {AppVersion: "3.5.1", Nodes: []string{"local"}, EncryptionKeyID: "k1"},
		"Version":   {AppVersion: "3.4.0", Nodes: []string{"local"}},
	} {
		if err := CheckCompatible(m, tg, false); !errors.Is(err, ErrIncompatible) {
			t.Errorf("%s: want ErrIncompatible, got %v", name, err)
		}
	}
	if err := CheckCompatible(m, Target{AppVersion: "2.0.0", Nodes: []string{"local"}}, true); err != nil {
		t.Errorf("--ignore-version must skip the version rule: %v", err)
	}
	if err := CheckCompatible(m, Target{AppVersion: "2.0.0", Nodes: []string{"x"}}, true); err == nil {
		t.Error("--ignore-version must not skip the topology rule")
	}
}
