package report

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func TestWriteEvent(t *testing.T) {
	var b bytes.Buffer
	WriteEvent(&b, Result, map[string]any{"id": "x"})
	WriteEvent(&b, Item, struct{}{})
	WriteEvent(&b, Result, []int{1}) // not an object: an error line
	want := `{"event":"result","id":"x"}` + "\n" + `{"event":"item"}` + "\n" + `{"event":"error","message":"not an object: \u003cnil\u003e"}` + "\n"
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestOutput_Partial(t *testing.T) {
	text := func(w io.Writer) { io.WriteString(w, "text\n") }
	fail := errors.New("boom")
	for _, tc := range []struct {
		json, quiet bool
		err         error
		want        string
	}{
		{false, false, nil, "text\n"},
		{false, true, nil, ""},
		{true, false, nil, `{"event":"result","n":1}` + "\n"},
		{true, false, fail, `{"event":"item","n":1}` + "\n"},
		{false, false, fail, "text\n"},
	} {
		var b bytes.Buffer
		o := &Output{Stdout: &b, JSON: tc.json, Quiet: tc.quiet}
		if err := o.Partial(map[string]int{"n": 1}, text, tc.err); err != tc.err || b.String() != tc.want {
			t.Errorf("%+v: got %q, %v", tc, b.String(), err)
		}
	}
}

func TestBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 5 << 30: "5.0 GiB"} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}
