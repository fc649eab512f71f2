// Package report shows hotsnap's results to people and to scripts: the
// JSON-lines contract of docs/json.md (one event per line, the last one the
// result or the error), progress as a terminal bar or as events, and the
// text form of every result. It runs no operation and decides nothing:
// cmd/hotsnap calls one library function per command and hands its result
// here. It is not for the agent's HTTP API, whose bodies are the result
// types themselves.
package report

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/hotsnap/hotsnap/fsutil"
)

// The events of the JSON contract: the first field of every line.
const (
	Progress = "progress"
	Warning  = "warning" // reserved: warnings are still in each result's "warnings"
	Item     = "item"
	Result   = "result"
	Error    = "error"
)

// WriteEvent writes v, a struct or a map, as one line with "event" first.
func WriteEvent(w io.Writer, event string, v any) {
	b, err := json.Marshal(v)
	if err != nil || len(b) < 2 || b[0] != '{' {
		b, _ = json.Marshal(map[string]string{"message": fmt.Sprintf("not an object: %v", err)})
		event = Error
	}
	line := make([]byte, 0, len(b)+24)
	line = append(line, `{"event":"`...)
	line = append(line, event...)
	line = append(line, '"')
	if len(b) > 2 {
		line = append(line, ',')
	}
	line = append(line, b[1:]...)
	w.Write(append(line, '\n'))
}

// Text writes a result's text form.
type Text func(w io.Writer)

// Output is where a command's output goes, and how: JSON lines or text
// on Stdout, progress and errors on Stderr; Quiet keeps only errors.
type Output struct {
	Stdout, Stderr io.Writer
	JSON, Quiet    bool
}

// Result prints a command's result: its JSON line, else its text form
// (unless Quiet).
func (o *Output) Result(v any, text Text) {
	if o.JSON {
		WriteEvent(o.Stdout, Result, v)
		return
	}
	if !o.Quiet {
		text(o.Stdout)
	}
}

// Partial prints what a command did before it failed with err: with
// JSON as an item line (the error line follows and ends the output),
// else its text form. With no error it is the result.
func (o *Output) Partial(v any, text Text, err error) error {
	switch {
	case err == nil:
		o.Result(v, text)
	case o.JSON:
		WriteEvent(o.Stdout, Item, v)
	case !o.Quiet:
		text(o.Stdout)
	}
	return err
}

// Error prints the error a command ended with, its exit code and its
// kind's name: the last JSON line, or one line on Stderr.
func (o *Output) Error(err error, code int, kind string) {
	if o.JSON {
		WriteEvent(o.Stdout, Error, map[string]any{"error": map[string]any{"message": err.Error(), "code": code, "kind": kind}})
		return
	}
	fmt.Fprintf(o.Stderr, "hotsnap: %s\n", fsutil.QuoteText(err.Error()))
}

// Bytes formats a byte count for people.
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// dash stands for an empty table cell.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
