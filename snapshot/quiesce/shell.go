package quiesce

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/hotsnap/hotsnap/defaults"
)

// ShellResult is how a command run by Shell ended.
type ShellResult struct {
	TimedOut bool
	Code     int    // exit status; -1 when it did not exit normally
	Output   string // the last 500 bytes of stderr (and stdout when asked)
}

// Shell runs cmdline through sh -c with extra environment variables,
// killing its whole process group after timeout. The error is for failures
// to run it at all or a cancelled ctx; a non-zero exit is in the result.
func Shell(ctx context.Context, cmdline string, timeout time.Duration, env []string, withStdout bool) (ShellResult, error) {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(cctx, "/bin/sh", "-c", cmdline)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stderr = &out
	if withStdout {
		cmd.Stdout = &out
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	res := ShellResult{Code: -1, Output: strings.TrimSpace(out.String())}
	if len(res.Output) > 500 {
		res.Output = res.Output[len(res.Output)-500:]
	}
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	if cctx.Err() == context.DeadlineExceeded {
		res.TimedOut = true
		return res, nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		res.Code = ee.ExitCode()
		return res, nil
	}
	if err != nil {
		return res, err
	}
	res.Code = 0
	return res, nil
}

// RunHook runs the application's stop or start command (what) through
// sh -c, with HOTSNAP_DATA_DIR set, killing it after timeout (0 means
// defaults.HookTimeout); a failure is an ErrHook error with the command's
// last output.
func RunHook(ctx context.Context, what, cmdline string, timeout time.Duration, dataDir string, log *slog.Logger) error {
	if timeout <= 0 {
		timeout = defaults.HookTimeout
	}
	r, err := Shell(ctx, cmdline, timeout, []string{"HOTSNAP_DATA_DIR=" + dataDir}, true)
	switch {
	case err != nil:
		return fmt.Errorf("%w: %s command %q: %v", ErrHook, what, cmdline, err)
	case r.TimedOut:
		return fmt.Errorf("%w: %s command %q did not finish within %s", ErrHook, what, cmdline, timeout)
	case r.Code != 0 && r.Output != "":
		return fmt.Errorf("%w: %s command %q exited with status %d: %s", ErrHook, what, cmdline, r.Code, r.Output)
	case r.Code != 0:
		return fmt.Errorf("%w: %s command %q exited with status %d", ErrHook, what, cmdline, r.Code)
	}
	if log != nil {
		log.Info(what+" command ran", "cmd", cmdline)
	}
	return nil
}
