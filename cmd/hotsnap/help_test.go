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
