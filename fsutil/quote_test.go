package fsutil

import (
	"strings"
	"testing"
	"unicode"
)

func TestQuote(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"plain.txt", "plain.txt"},
		{"with space/ünïcode", "with space/ünïcode"},
		{"a\nb", `a\nb`},
		{"x\x1b[31mred", `x\e[31mred`},
		{"back\\slash", `back\\slash`},
		{"tab\there\r", `tab\there\r`},
		{"nul\x00del\x7f", `nul\x00del\x7f`},
		{"bad\xff\xfeutf8", `bad\xff\xfeutf8`},
		{"rtl\u202egnp.exe", `rtl\u202egnp.exe`},
		{"next\u0085line", `next\u0085line`},
	} {
		got := Quote(c.in)
		if got != c.want {
			t.Errorf("Quote(%q) = %q, want %q", c.in, got, c.want)
		}
		for _, r := range got {
			if !unicode.IsPrint(r) {
				t.Errorf("Quote(%q) = %q holds the non-printable %U", c.in, got, r)
			}
		}
	}
	// Distinct names quote distinctly: a literal backslash-n is not a newline.
	if Quote(`a\nb`) == Quote("a\nb") {
		t.Error(`"a\\nb" and "a\nb" quote alike`)
	}
	msg := QuoteText("create: file a\nhotsnap: forged\x1b[2K line")
	if strings.Contains(msg, "\nhotsnap:") || strings.ContainsRune(msg, 0x1b) || !strings.Contains(msg, "\n  hotsnap: forged") {
		t.Errorf("QuoteText: %q", msg)
	}
}
