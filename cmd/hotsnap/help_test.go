package main

import (
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// TestHelp_Renders: every command's help lists its flags as the user
// types them. urfave/cli takes a back-quoted word in a flag's usage as the
// flag's placeholder (`download --help` once showed
// "--encryption-key-file hotsnap archive keygen"), so no usage may hold one.
func TestHelp_Renders(t *testing.T) {
	var walk func(path string, cmds []*cli.Command)
	walk = func(path string, cmds []*cli.Command) {
		for _, c := range cmds {
			name := path + " " + c.Name
			for _, f := range c.Flags {
				if d, ok := f.(cli.DocGenerationFlag); ok && strings.Contains(d.GetUsage(), "`") {
					t.Errorf("%s --%s: a back quote in its usage becomes the flag's placeholder: %q", name, f.Names()[0], d.GetUsage())
				}
			}
			code, out, errb := hs(t, append(strings.Fields(name)[1:], "--help")...)
			if code != 0 || !strings.Contains(out, "USAGE") {
				t.Errorf("%s --help: exit %d: %s %s", name, code, out, errb)
			}
			walk(name, c.Subcommands)
		}
	}
	walk("hotsnap", newApp().Commands)
}

// TestFlags_OneNamePerConcept: across every command, a concept has one
// visible flag name. The groups are the names that once drifted (and any
// added here); the old names live on hidden, for one release.
func TestFlags_OneNamePerConcept(t *testing.T) {
	groups := [][]string{
		{"fast-verify", "fast"},
		{"output", "out"},
		{"ca-dir", "dir"},
		{"job", "job-id"},
		{"node-id", "node"},
		{"encryption-key-file", "key-file"},
	}
	used := map[string][]string{} // visible flag name -> commands
	var walk func(path string, cmds []*cli.Command)
	walk = func(path string, cmds []*cli.Command) {
		for _, c := range cmds {
			name := path + " " + c.Name
			for _, f := range c.Flags {
				if vf, ok := f.(cli.VisibleFlag); ok && !vf.IsVisible() {
					continue
				}
				used[f.Names()[0]] = append(used[f.Names()[0]], name)
			}
			walk(name, c.Subcommands)
		}
	}
	walk("hotsnap", newApp().Commands)
	for _, g := range groups {
		for _, other := range g[1:] {
			if cmds := used[other]; len(cmds) > 0 && g[0] != other {
				// "node" names a certificate's node in ca issue: another concept.
				if other == "node" && len(cmds) == 1 && cmds[0] == "hotsnap cluster ca issue" {
					continue
				}
				t.Errorf("--%s (in %v) means what --%s does: use one name", other, cmds, g[0])
			}
		}
	}
}
