package snapshot

import (
	"crypto/rand"
	"fmt"
	"regexp"
	"time"
)

// IDTimeLayout is the time part of a snapshot id.
const IDTimeLayout = "2006-01-02T15.04.05Z"

var labelPattern = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// ValidLabel refuses labels that could not be part of a file name.
func ValidLabel(label string) error {
	if !labelPattern.MatchString(label) {
		return fmt.Errorf("%w: label %q may only hold letters, digits, '.', '_' and '-'", ErrInvalid, label)
	}
	if len(label) > 200 {
		return fmt.Errorf("%w: label is %d characters long, at most 200 are allowed", ErrInvalid, len(label))
	}
	return nil
}

// NewID makes <UTC time>_<label>; an empty label becomes a random UUID.
func NewID(t time.Time, label string) (string, error) {
	if label == "" {
		label = newUUID()
	}
	if err := ValidLabel(label); err != nil {
		return "", err
	}
	return t.UTC().Format(IDTimeLayout) + "_" + label, nil
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// ValidID checks that id has the form of a snapshot id
// (<UTC time as 2006-01-02T15.04.05Z>_<label>).
func ValidID(id string) error { return validID(id) }
