// Package layers holds the test of hotsnap's layering (docs/DESIGN.md,
// Layers; README, Architecture): a package imports only packages of lower
// layers, so the picture a newcomer reads stays true.
package layers

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/hotsnap/hotsnap/"

// layers lists the packages from the bottom up; a package may import only
// packages of earlier rows (siblings on one row may not import each other).
var layers = [][]string{
	{"errs", "defaults"},
	{"internal/par", "internal/crash", "internal/proc"},
	{"fsutil", "retention"},
	{"manifest", "snapshot/writegate", "snapshot/freezer", "archive/store"},
	{"tree", "hardlink", "archive/store/fs", "archive/store/s3", "archive/store/storetest", "archive/store/faulty"},
	{"snapshot", "archive"},
	{"archive/remote", "policy"},
	{"cluster"},
	{"cmd/hotsnap"},
}

// outside the layers: examples, scripts and test helpers, which may import
// anything and which nothing but tests and each other import.
var outside = []string{"examples/", "scripts/", "internal/bank", "internal/etcdembed", "internal/test", "internal/layers"}

func isOutside(p string) bool {
	for _, o := range outside {
		if strings.HasPrefix(p, o) {
			return true
		}
	}
	return false
}

func TestLayers(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", module+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	rank := map[string]int{}
	for i, row := range layers {
		for _, p := range row {
			rank[p] = i
		}
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], module)
		seen[pkg] = true
		if isOutside(pkg) {
			continue
		}
		r, ok := rank[pkg]
		if !ok {
			t.Errorf("package %s is in no layer: add it to the table here, docs/DESIGN.md and the README", pkg)
			continue
		}
		for _, imp := range fields[1:] {
			if !strings.HasPrefix(imp, module) {
				continue
			}
			dep := strings.TrimPrefix(imp, module)
			if isOutside(dep) {
				t.Errorf("%s imports %s, a test helper or script", pkg, dep)
				continue
			}
			if dr, ok := rank[dep]; ok && dr >= r {
				t.Errorf("%s (layer %d) imports %s (layer %d): a package may import only lower layers", pkg, r, dep, dr)
			}
		}
	}
	for p := range rank {
		if !seen[p] {
			t.Errorf("the table names %s, which is not a package", p)
		}
	}
}
