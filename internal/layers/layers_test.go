// Package layers holds the test of hotsnap's layering: a package imports
// only packages of lower layers, so the picture a newcomer reads stays
// true. The table is docs/DESIGN.md's "Layers" block, read from there.
package layers

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/hotsnap/hotsnap/"

// outside the layers: examples, scripts and test fixtures, which may
// import anything and which nothing but tests and each other import.
var outside = []string{"examples/", "scripts/", "internal/testutil/", "internal/layers"}

func isOutside(p string) bool {
	for _, o := range outside {
		if strings.HasPrefix(p, o) {
			return true
		}
	}
	return false
}

// readTable reads the layer of every package from docs/DESIGN.md: lines
// "N  path  what it is", a line without N on the layer above.
func readTable(t *testing.T) map[string]int {
	b, err := os.ReadFile("../../docs/DESIGN.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	start := strings.Index(doc, "## Layers\n\n```\n")
	if start < 0 {
		t.Fatal(`docs/DESIGN.md has no "## Layers" block`)
	}
	block := doc[start+len("## Layers\n\n```\n"):]
	block = block[:strings.Index(block, "```")]
	rank := map[string]int{}
	layer := -1
	for _, line := range strings.Split(strings.TrimSpace(block), "\n") {
		f := strings.Fields(line)
		if n, err := strconv.Atoi(f[0]); err == nil {
			layer, f = n, f[1:]
		}
		if layer < 0 || len(f) == 0 {
			t.Fatalf("layer table line %q: want N  path  description", line)
		}
		if _, dup := rank[f[0]]; dup {
			t.Fatalf("layer table names %s twice", f[0])
		}
		rank[f[0]] = layer
	}
	return rank
}

func TestLayers(t *testing.T) {
	rank := readTable(t)
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", module+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
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
			t.Errorf("package %s is in no layer: add it to docs/DESIGN.md's layer table", pkg)
			continue
		}
		for _, imp := range fields[1:] {
			if !strings.HasPrefix(imp, module) {
				continue
			}
			dep := strings.TrimPrefix(imp, module)
			if isOutside(dep) {
				t.Errorf("%s imports %s, a test fixture or script", pkg, dep)
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

// TestInternalIsOneLayer: besides the fixtures under internal/testutil, no
// package under internal/ imports a package above fsutil.
func TestInternalIsOneLayer(t *testing.T) {
	rank := readTable(t)
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", module+"internal/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], module)
		if strings.HasPrefix(pkg, "internal/testutil/") {
			continue
		}
		for _, imp := range fields[1:] {
			if dep, ok := strings.CutPrefix(imp, module); ok && rank[dep] > rank["fsutil"] {
				t.Errorf("%s imports %s, above fsutil", pkg, dep)
			}
		}
	}
}
