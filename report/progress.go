package report

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/hotsnap/hotsnap/archive"
	"github.com/hotsnap/hotsnap/cluster"
)

// Progress picks how progress is shown: JSON-lines events on Stdout with
// JSON, a live bar on Stderr when it is a terminal, nothing otherwise.
func (o *Output) Progress() archive.Progress {
	switch {
	case o.JSON:
		return &jsonProgress{w: o.Stdout}
	case o.Quiet:
		return archive.NoProgress{}
	}
	if f, ok := o.Stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return &barProgress{w: o.Stderr}
	}
	return archive.NoProgress{}
}

// ClusterProgress prints per-node job progress: JSON lines with JSON
// (at most two a second, and on every node finishing), else a line on
// Stderr (at most every 2 s, and on every node finishing).
func (o *Output) ClusterProgress() func(cluster.JobsProgress) {
	var last time.Time
	lastDone := -1
	return func(p cluster.JobsProgress) {
		switch {
		case o.JSON:
			if time.Since(last) >= 500*time.Millisecond || p.Done != lastDone {
				WriteEvent(o.Stdout, Progress, map[string]any{"op": p.Op, "id": p.ID, "jobId": p.JobID, "nodes": p.Nodes, "nodesDone": p.Done, "jobs": p.Jobs})
				last, lastDone = time.Now(), p.Done
			}
		case o.Quiet:
		default:
			if time.Since(last) >= 2*time.Second || p.Done != lastDone {
				fmt.Fprintln(o.Stderr, p.String())
				last, lastDone = time.Now(), p.Done
			}
		}
	}
}

// barProgress is a terminal bar: bytes, files, rate, ETA.
type barProgress struct {
	w                io.Writer
	mu               sync.Mutex
	bar              *progressbar.ProgressBar
	op               string
	files, filesDone int64
}

func (p *barProgress) Start(op string, files, bytes int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.op, p.files, p.filesDone = op, files, 0
	if bytes <= 0 {
		bytes = -1 // unknown: a spinner with the count
	}
	p.bar = progressbar.NewOptions64(bytes,
		progressbar.OptionSetWriter(p.w), progressbar.OptionShowBytes(true), progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetWidth(30), progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish(),
		progressbar.OptionSetDescription(fmt.Sprintf("%s 0/%d files", op, files)))
}

func (p *barProgress) Add(files, bytes int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar == nil {
		return
	}
	p.filesDone += files
	p.bar.Describe(fmt.Sprintf("%s %d/%d files", p.op, p.filesDone, p.files))
	p.bar.Add64(bytes)
}

func (p *barProgress) Done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		p.bar.Finish()
	}
}

// jsonProgress prints {"event":"progress",...} lines, at most two a second
// plus a last one, before the command's result line.
type jsonProgress struct {
	w                                  io.Writer
	mu                                 sync.Mutex
	op                                 string
	files, bytes, filesDone, bytesDone int64
	start, last                        time.Time
}

func (p *jsonProgress) Start(op string, files, bytes int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	// A command may run several phases (create: capture, then hash):
	// each Start begins afresh.
	p.op, p.files, p.bytes, p.start = op, files, bytes, time.Now()
	p.filesDone, p.bytesDone = 0, 0
	p.emit()
}

func (p *jsonProgress) Add(files, bytes int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.filesDone += files
	p.bytesDone += bytes
	if time.Since(p.last) >= 500*time.Millisecond {
		p.emit()
	}
}

func (p *jsonProgress) Done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.emit()
}

func (p *jsonProgress) emit() {
	p.last = time.Now()
	el := time.Since(p.start).Seconds()
	rate, eta := 0.0, -1.0
	if el > 0 {
		rate = float64(p.bytesDone) / el
	}
	if rate > 0 {
		eta = float64(p.bytes-p.bytesDone) / rate
	}
	WriteEvent(p.w, Progress, map[string]any{"op": p.op, "filesDone": p.filesDone, "filesTotal": p.files,
		"bytesDone": p.bytesDone, "bytesTotal": p.bytes, "bytesPerSecond": int64(rate), "etaSeconds": int64(eta)})
}
