package manifest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// Name is a file name or symlink target as raw bytes. Linux names need not
// be UTF-8 and JSON strings must be, so a Name that is valid UTF-8 encodes as
// a JSON string and any other as {"base64": "..."}. Decoding accepts both;
// the seal makes the choice canonical (a UTF-8 name encoded as base64 breaks it).
type Name string

// MarshalJSON implements json.Marshaler.
func (n Name) MarshalJSON() ([]byte, error) {
	if utf8.ValidString(string(n)) {
		return json.Marshal(string(n))
	}
	return json.Marshal(struct {
		Base64 string `json:"base64"`
	}{base64.StdEncoding.EncodeToString([]byte(n))})
}

// UnmarshalJSON implements json.Unmarshaler.
func (n *Name) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*n = Name(s)
		return nil
	}
	var o struct {
		Base64 *string `json:"base64"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&o); err != nil || o.Base64 == nil {
		return fmt.Errorf("name must be a string or {\"base64\": ...}")
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(*o.Base64)
	if err != nil {
		return fmt.Errorf("name: bad base64: %w", err)
	}
	*n = Name(raw)
	return nil
}

// String quotes the name for messages so that odd bytes stay visible.
func (n Name) String() string { return fmt.Sprintf("%q", string(n)) }
