package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// cliReference is docs/cli.md: every command, its usage and its flags,
// from the command definitions themselves.
func cliReference() string {
	var b strings.Builder
	b.WriteString("# hotsnap command reference\n\n")
	b.WriteString("Generated from the command definitions (`make docs`); a test fails when\nthis file is stale. The guides are in the other files of docs/.\n")
	var walk func(prefix string, cmds []*cli.Command)
	walk = func(prefix string, cmds []*cli.Command) {
		for _, c := range cmds {
			if c.Hidden {
				continue
			}
			name := prefix + " " + c.Name
			fmt.Fprintf(&b, "\n## %s\n\n%s\n", strings.TrimSpace(name), c.Usage)
			if c.ArgsUsage != "" {
				fmt.Fprintf(&b, "\nArguments: `%s`\n", c.ArgsUsage)
			}
			var rows []string
			for _, f := range c.Flags {
				if vf, ok := f.(cli.VisibleFlag); ok && !vf.IsVisible() {
					continue
				}
				names := f.Names()
				var shown []string
				for _, n := range names {
					if len(n) == 1 {
						shown = append(shown, "`-"+n+"`")
					} else {
						shown = append(shown, "`--"+n+"`")
					}
				}
				def, env, usage := "", "", ""
				if df, ok := f.(cli.DocGenerationFlag); ok {
					if df.TakesValue() {
						def = df.GetDefaultText()
						if def == "" {
							def = df.GetValue()
						}
					}
					env = strings.Join(df.GetEnvVars(), ", ")
					usage = df.GetUsage()
				}
				if def != "" {
					def = "`" + def + "`"
				}
				rows = append(rows, fmt.Sprintf("| %s | %s | %s | %s |", strings.Join(shown, ", "), def, env, strings.ReplaceAll(usage, "|", "\\|")))
			}
			if len(rows) > 0 {
				b.WriteString("\n| flag | default | environment | what it does |\n|---|---|---|---|\n")
				b.WriteString(strings.Join(rows, "\n") + "\n")
			}
			walk(name, c.Subcommands)
		}
	}
	walk("hotsnap", newApp().Commands)
	return b.String()
}

// TestDocs_CLIReference: docs/cli.md is what the command definitions
// say; HOTSNAP_UPDATE_DOCS=1 (make docs) writes it.
func TestDocs_CLIReference(t *testing.T) {
	path := filepath.Join("..", "..", "docs", "cli.md")
	want := cliReference()
	if os.Getenv("HOTSNAP_UPDATE_DOCS") != "" {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil || string(got) != want {
		t.Fatalf("docs/cli.md is stale (%v): run `make docs`", err)
	}
}

var (
	mdLink    = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	mdHeading = regexp.MustCompile("(?m)^#{1,6} (.+)$")
	mdFence   = regexp.MustCompile("(?ms)^```.*?^```")
)

// anchors are the GitHub anchors of a markdown file's headings.
func anchors(md string) map[string]bool {
	out := map[string]bool{}
	for _, m := range mdHeading.FindAllStringSubmatch(mdFence.ReplaceAllString(md, ""), -1) {
		var b strings.Builder
		for _, r := range strings.ToLower(strings.TrimSpace(m[1])) {
			switch {
			case r == ' ' || r == '-':
				b.WriteRune('-')
			case r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127:
				b.WriteRune(r)
			}
		}
		out[b.String()] = true
	}
	return out
}

// TestDocs_Links: every relative link of the README, the changelog and
// docs/ names a file that exists, and an anchor its target has.
func TestDocs_Links(t *testing.T) {
	root := filepath.Join("..", "..")
	files, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	files = append(files, filepath.Join(root, "README.md"), filepath.Join(root, "CHANGELOG.md"))
	ex, _ := filepath.Glob(filepath.Join(root, "examples", "*.md"))
	files = append(files, ex...)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		text := mdFence.ReplaceAllString(string(b), "")
		for _, m := range mdLink.FindAllStringSubmatch(text, -1) {
			link := m[1]
			if strings.Contains(link, "://") || strings.HasPrefix(link, "mailto:") {
				continue
			}
			target, anchor, _ := strings.Cut(link, "#")
			path := f
			if target != "" {
				path = filepath.Join(filepath.Dir(f), target)
			}
			tb, err := os.ReadFile(path)
			if err != nil {
				if fi, serr := os.Stat(path); serr == nil && fi.IsDir() {
					continue
				}
				t.Errorf("%s: link %s: %v", f, link, err)
				continue
			}
			if anchor != "" && strings.HasSuffix(path, ".md") && !anchors(string(tb))[anchor] {
				t.Errorf("%s: link %s: %s has no heading #%s", f, link, path, anchor)
			}
		}
	}
}
