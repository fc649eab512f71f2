// Package pipeline runs a backup policy in one go (docs/DESIGN.md,
// "Policies"): take a snapshot, upload it, prune the local snapshots and
// forget archived ones by keep rules, optionally gc the archive. Each step
// runs only if the one before succeeded, so a failed step leaves
// everything earlier intact (a snapshot taken stays, whether or not it was
// uploaded), and the result names the step that failed. It schedules
// nothing (the agent's --policy-every and cron do) and implements no step
// itself: each is a call into snapshot or archive.
package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hotsnap/hotsnap/archive"
	"github.com/hotsnap/hotsnap/errs"
	"github.com/hotsnap/hotsnap/fsutil"
	"github.com/hotsnap/hotsnap/retention"
	"github.com/hotsnap/hotsnap/snapshot"
)

// Keep is a keep rule set as written in a policy file.
type Keep struct {
	Last    int    `json:"last,omitempty"`
	Within  string `json:"within,omitempty"` // a Go duration: "24h"
	Hourly  int    `json:"hourly,omitempty"`
	Daily   int    `json:"daily,omitempty"`
	Weekly  int    `json:"weekly,omitempty"`
	Monthly int    `json:"monthly,omitempty"`
}

// Policy is a policy file.
type Policy struct {
	// Label is the snapshots' id suffix; empty: a random UUID each time.
	Label string `json:"label,omitempty"`
	// Remote is the archive to upload to; empty: no upload (the caller's
	// --remote, when given, fills it).
	Remote string `json:"remote,omitempty"`
	// KeepLocal prunes local snapshots; nil: no pruning.
	KeepLocal *Keep `json:"keepLocal,omitempty"`
	// KeepRemote forgets archived snapshots; nil: none forgotten.
	KeepRemote *Keep `json:"keepRemote,omitempty"`
	// GC runs archive gc after forgetting.
	GC bool `json:"gc,omitempty"`
}

// KeepPolicy converts k.
func (k *Keep) KeepPolicy() (retention.KeepPolicy, error) {
	p := retention.KeepPolicy{Last: k.Last, Hourly: k.Hourly, Daily: k.Daily, Weekly: k.Weekly, Monthly: k.Monthly}
	if k.Within != "" {
		d, err := time.ParseDuration(k.Within)
		if err != nil {
			return p, fmt.Errorf("%w: within %q: %v", errs.ErrInvalid, k.Within, err)
		}
		p.Within = d
	}
	return p, p.Check()
}

// Load reads and checks a policy file: strict JSON (an unknown field is
// an error, not a rule silently ignored), keep rules that keep something.
func Load(path string) (*Policy, error) {
	// The policy says what to prune and forget and where the archive is:
	// whoever may write it decides that, so it must be the invoking user's
	// or root's, writable by no one else, reached with no symlink.
	b, err := fsutil.ReadTrustedFile(path, "policy file")
	if errors.Is(err, fsutil.ErrInsecureFile) {
		return nil, err
	} else if err != nil {
		return nil, fmt.Errorf("%w: policy: %v", errs.ErrInvalid, err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var p Policy
	if err := dec.Decode(&p); err != nil || dec.More() {
		if err == nil {
			err = fmt.Errorf("more than one JSON value")
		}
		return nil, fmt.Errorf("%w: policy %s: %v", errs.ErrInvalid, path, err)
	}
	return &p, p.Check()
}

// Check refuses keep rules that keep nothing, and forget or gc without a
// remote.
func (p *Policy) Check() error {
	for _, k := range []*Keep{p.KeepLocal, p.KeepRemote} {
		if k != nil {
			if _, err := k.KeepPolicy(); err != nil {
				return err
			}
		}
	}
	if p.Remote == "" && (p.KeepRemote != nil || p.GC) {
		return fmt.Errorf("%w: policy: keepRemote and gc need a remote", errs.ErrInvalid)
	}
	return nil
}

// Step is one step's outcome.
type Step struct {
	Step       string   `json:"step"` // create, upload, prune, forget, gc
	OK         bool     `json:"ok"`
	Error      string   `json:"error,omitempty"`
	DurationMs float64  `json:"durationMs"`
	ID         string   `json:"id,omitempty"`      // create, upload
	Bytes      int64    `json:"bytes,omitempty"`   // create: snapshot bytes; upload: bytes sent; gc: bytes freed
	Removed    []string `json:"removed,omitempty"` // prune, forget
}

// Result is a run's outcome. The JSON form is `hotsnap run`'s.
type Result struct {
	OK         bool      `json:"ok"`
	FailedStep string    `json:"failedStep,omitempty"`
	ID         string    `json:"id,omitempty"`
	Steps      []Step    `json:"steps"`
	StartedAt  time.Time `json:"startedAt"`
	DurationMs float64   `json:"durationMs"`
}

// Options say how to run the steps.
type Options struct {
	// Create has the snapshot's options (quiescer, lock policy, globs...);
	// the policy's label replaces its Label.
	Create snapshot.CreateOptions
	// OpenRemote opens the policy's remote (only called when it has one).
	OpenRemote func(ctx context.Context, remote string) (*archive.Repo, error)
	Logger     *slog.Logger
	Now        func() time.Time
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Runner records the steps of a run: each step's outcome and time, the
// first failure. The cluster's policy run uses it too.
type Runner struct {
	res   *Result
	start time.Time
}

// NewRunner starts a run at now.
func NewRunner(now time.Time) *Runner {
	return &Runner{res: &Result{StartedAt: now.UTC(), Steps: []Step{}}, start: time.Now()}
}

// Step runs fn as the step name and records it; it returns fn's error.
func (r *Runner) Step(name string, fn func(s *Step) error) error {
	s := Step{Step: name}
	t := time.Now()
	err := fn(&s)
	s.DurationMs = ms(time.Since(t))
	s.OK = err == nil
	if err != nil {
		s.Error = err.Error()
		r.res.FailedStep = name
	}
	if s.Step == "create" && err == nil {
		r.res.ID = s.ID
	}
	r.res.Steps = append(r.res.Steps, s)
	return err
}

// Finish ends the run: the result, and err (the failed step's) wrapped
// with the step's name.
func (r *Runner) Finish(err error) (*Result, error) {
	r.res.OK = err == nil
	r.res.DurationMs = ms(time.Since(r.start))
	if err != nil {
		return r.res, fmt.Errorf("%s: %w", r.res.FailedStep, err)
	}
	return r.res, nil
}

// ID is the id of the snapshot the run's create step took ("" before).
func (r *Runner) ID() string { return r.res.ID }

// Run runs p on the data dir of l. The error is the failed step's (its
// kind gives the exit code); res says which step failed and what the
// steps before it did.
func Run(ctx context.Context, l *snapshot.Layout, p *Policy, o Options) (*Result, error) {
	if err := p.Check(); err != nil {
		return nil, err
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	run := NewRunner(o.Now())
	co := o.Create
	co.Label = p.Label
	if co.Logger == nil {
		co.Logger = o.Logger
	}
	// Check before doing: the remote is opened (reached, its config read,
	// the credentials accepted) before anything is created, so a bad
	// endpoint leaves no snapshot behind.
	var repo *archive.Repo
	if p.Remote != "" {
		if err := run.Step("remote", func(s *Step) error {
			var err error
			repo, err = o.OpenRemote(ctx, p.Remote)
			return err
		}); err != nil {
			return run.Finish(err)
		}
	}
	err := run.Step("create", func(s *Step) error {
		cr, err := snapshot.Create(ctx, l, co)
		if err == nil {
			s.ID, s.Bytes = cr.ID, cr.Bytes
		}
		return err
	})
	if err != nil {
		return run.Finish(err)
	}
	if p.Remote != "" {
		err = run.Step("upload", func(s *Step) error {
			ur, err := archive.Upload(ctx, repo, l, run.ID(), archive.UploadOptions{Logger: o.Logger})
			if err == nil {
				s.ID, s.Bytes = ur.ID, ur.BytesSent
			}
			return err
		})
		if err != nil {
			return run.Finish(err)
		}
	}
	if p.KeepLocal != nil {
		kp, _ := p.KeepLocal.KeepPolicy()
		err = run.Step("prune", func(s *Step) error {
			pr, err := snapshot.Prune(ctx, l, kp, false, o.Now(), o.Logger)
			if err == nil {
				for _, d := range pr.Remove {
					s.Removed = append(s.Removed, d.ID)
				}
			}
			return err
		})
		if err != nil {
			return run.Finish(err)
		}
	}
	return run.Finish(ArchiveSteps(ctx, run, p, func() (*archive.Repo, error) { return repo, nil }, o.Now))
}

// ArchiveSteps runs the forget and gc steps of p (nothing when p has no
// keepRemote and no gc) on the archive open gives, which is called (by the
// first of them) inside the step, so a remote that cannot be opened fails
// the step that needed it.
func ArchiveSteps(ctx context.Context, run *Runner, p *Policy, open func() (*archive.Repo, error), now func() time.Time) error {
	var repo *archive.Repo
	get := func() (*archive.Repo, error) {
		var err error
		if repo == nil {
			repo, err = open()
		}
		return repo, err
	}
	if p.KeepRemote != nil {
		kp, _ := p.KeepRemote.KeepPolicy()
		err := run.Step("forget", func(s *Step) error {
			repo, err := get()
			if err != nil {
				return err
			}
			fr, err := repo.Forget(ctx, kp, false, now())
			if err == nil {
				for _, d := range fr.Remove {
					s.Removed = append(s.Removed, d.ID)
				}
			}
			return err
		})
		if err != nil {
			return err
		}
	}
	if p.GC {
		return run.Step("gc", func(s *Step) error {
			repo, err := get()
			if err != nil {
				return err
			}
			gr, err := repo.GC(ctx, false, nil)
			if err == nil {
				s.Bytes = gr.BytesBefore - gr.BytesAfter
			}
			return err
		})
	}
	return nil
}
