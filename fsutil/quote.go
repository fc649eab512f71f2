package fsutil

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Quote returns name as it is when every character of it is printable
// and none is a backslash; otherwise with C-style escapes, as ls -b
// writes names: \\ for a backslash, \n \t \r \a \b \f \v, \e for ESC,
// \xHH for any other control byte, DEL and each byte of invalid UTF-8,
// and \uXXXX for a printable-looking but invisible or reordering rune
// (U+202E and the like). A quoted name is one line with no control
// character, so a name the application chose cannot forge a line of
// text output or move the terminal's cursor. JSON output needs none of
// this: encoding/json escapes what it must.
func Quote(name string) string {
	if isPlain(name) {
		return name
	}
	var b strings.Builder
	b.Grow(len(name) + 8)
	for i := 0; i < len(name); {
		r, n := utf8.DecodeRuneInString(name[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			b.WriteString(`\x`)
			b.WriteString(hex2(name[i]))
		case r == '\\':
			b.WriteString(`\\`)
		case r == 0x1b:
			b.WriteString(`\e`)
		case r < 0x80 && !unicode.IsPrint(r):
			switch r {
			case '\n':
				b.WriteString(`\n`)
			case '\t':
				b.WriteString(`\t`)
			case '\r':
				b.WriteString(`\r`)
			case '\a':
				b.WriteString(`\a`)
			case '\b':
				b.WriteString(`\b`)
			case '\f':
				b.WriteString(`\f`)
			case '\v':
				b.WriteString(`\v`)
			default:
				b.WriteString(`\x`)
				b.WriteString(hex2(byte(r)))
			}
		case !unicode.IsPrint(r):
			q := strconv.QuoteRuneToASCII(r) // '\u202e'
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(name[i : i+n])
		}
		i += n
	}
	return b.String()
}

// QuoteText escapes the control characters of a message (an error, a
// warning) as Quote does, but keeps its line breaks, each followed by two
// spaces: a name inside the message can then neither forge a line that
// starts at the margin nor send the terminal an escape.
func QuoteText(msg string) string {
	if isPlain(msg) {
		return msg
	}
	lines := strings.Split(msg, "\n")
	for i, l := range lines {
		lines[i] = strings.ReplaceAll(Quote(l), `\\`, `\`)
	}
	return strings.Join(lines, "\n  ")
}

func isPlain(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f || c == '\\' || c >= 0x80 {
			return isPlainUnicode(s)
		}
	}
	return true
}

func isPlainUnicode(s string) bool {
	for _, r := range s {
		if r == utf8.RuneError || r == '\\' || !unicode.IsPrint(r) {
			return false
		}
	}
	return utf8.ValidString(s)
}

func hex2(c byte) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[c>>4], digits[c&15]})
}
