package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hotsnap/hotsnap/internal/testutil/testtree"
	"github.com/hotsnap/hotsnap/internal/testutil/testuser"
	"github.com/hotsnap/hotsnap/snapshot/freezer"
	"github.com/hotsnap/hotsnap/snapshot/freezer/freezertest"
)

// thawRecords lists the thaw records in the data dir's private state.
func thawRecords(t *testing.T, dir string) []string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, ".hotsnap", "private", "thaw.*"))
	return m
}

// hangAt starts the hotsnap test binary, which waits at step for a signal;
// it returns once the process is there.
func hangAt(t *testing.T, bin, step string, args ...string) *exec.Cmd {
	t.Helper()
	return hangAtWith(t, bin, step, nil, args...)
}

// hangAtWith is hangAt with the command's stderr kept in stderr.
func hangAtWith(t *testing.T, bin, step string, stderr io.Writer, args ...string) *exec.Cmd {
	t.Helper()
	ready := filepath.Join(t.TempDir(), "ready")
	cmd := exec.Command(bin, args...)
	if stderr != nil {
		cmd.Stdout, cmd.Stderr = stderr, stderr
	}
	cmd.Env = append(os.Environ(), "HOTSNAP_HANG_AT="+step, "HOTSNAP_HANG_READY="+ready)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(ready); err == nil {
			return cmd
		}
		if cmd.ProcessState != nil {
			t.Fatal("hotsnap exited before reaching", step)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func procExit(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// TestCLI_QuiesceFreeze takes snapshots of a data dir under `--quiesce
// freeze` with a real process tree in a real cgroup (v2, and the v1
// freezer), and checks that the cgroup is thawed on every way out:
// success, SIGINT while frozen, a panic while frozen; and that a hotsnap
// killed while the cgroup is frozen leaves a record that recover thaws.
func TestCLI_QuiesceFreeze(t *testing.T) {
	bin := buildTestBinary(t)
	for _, v1 := range []bool{false, true} {
		t.Run(map[bool]string{false: "v2", true: "v1"}[v1], func(t *testing.T) {
			cg := freezertest.New(t, v1)
			f := filepath.Join(t.TempDir(), "n")
			freezertest.Start(t, cg, "sh", "-c", freezertest.Busy, f)
			files := freezertest.BusyFiles(f)
			freezertest.WaitAdvancing(t, files...)
			dir := testtree.New(t)
			args := func(label string) []string {
				return []string{"create", "--data-dir", dir, "--quiesce", "freeze", "--cgroup", cg.Dir, "--label", label, "--json"}
			}
			frozen := func() bool {
				fr, err := cg.Frozen()
				if err != nil {
					t.Fatal(err)
				}
				return fr
			}

			out, err := exec.Command(bin, args("ok")...).Output()
			if err != nil {
				t.Fatalf("create: %v %s", err, out)
			}
			var res struct {
				LockHeldMs   float64
				LockAttempts int
			}
			json.Unmarshal([]byte(lastLine(string(out))), &res)
			if res.LockAttempts != 1 || frozen() || len(thawRecords(t, dir)) != 0 {
				t.Fatalf("after create: %s; frozen %v; records %v", out, frozen(), thawRecords(t, dir))
			}
			freezertest.WaitAdvancing(t, files...)
			t.Logf("writes paused %.2f ms", res.LockHeldMs)

			// SIGINT while frozen: the command fails, the cgroup is thawed.
			var stderr bytes.Buffer
			cmd := hangAtWith(t, bin, "create.locked", &stderr, args("sigint")...)
			if !frozen() || len(thawRecords(t, dir)) != 1 {
				t.Fatalf("while hotsnap holds the lock: frozen %v, records %v", frozen(), thawRecords(t, dir))
			}
			freezertest.StaysStill(t, files...)
			cmd.Process.Signal(os.Interrupt)
			if code := procExit(cmd.Wait()); code != 130 || !strings.Contains(stderr.String(), "no snapshot was published") {
				t.Fatalf("create interrupted: exit %d (want 130), saying %q (want what it left)", code, stderr.String())
			}
			if frozen() || len(thawRecords(t, dir)) != 0 {
				t.Fatalf("after SIGINT: frozen %v, records %v", frozen(), thawRecords(t, dir))
			}
			freezertest.WaitAdvancing(t, files...)

			// A panic while frozen (a bug of ours): thawed on the way out.
			cmd = exec.Command(bin, args("panic")...)
			cmd.Env = append(os.Environ(), "HOTSNAP_PANIC_AT=create.locked")
			if code := procExit(cmd.Run()); code != 70 {
				t.Fatalf("create that panics: exit %d, want 70", code)
			}
			if frozen() || len(thawRecords(t, dir)) != 0 {
				t.Fatalf("after a panic: frozen %v, records %v", frozen(), thawRecords(t, dir))
			}

			// SIGKILL while frozen: the cgroup stays frozen until recover.
			cmd = exec.Command(bin, args("killed")...)
			cmd.Env = append(os.Environ(), "HOTSNAP_CRASH_AT=create.locked")
			cmd.Run()
			if !frozen() || len(thawRecords(t, dir)) != 1 {
				t.Fatalf("after SIGKILL: frozen %v, records %v", frozen(), thawRecords(t, dir))
			}
			out, err = exec.Command(bin, "recover", "--data-dir", dir, "--json").Output()
			if err != nil || !strings.Contains(string(out), cg.Dir) {
				t.Fatalf("recover: %v %s", err, out)
			}
			if frozen() || len(thawRecords(t, dir)) != 0 {
				t.Fatalf("after recover: frozen %v, records %v", frozen(), thawRecords(t, dir))
			}
			freezertest.WaitAdvancing(t, files...)
			if out, err := exec.Command(bin, "list", "--data-dir", dir, "--json").Output(); err != nil || strings.Count(string(out), `"id"`) != 1 {
				t.Fatalf("list: want the one good snapshot: %v %s", err, out)
			}
		})
	}
}

func TestCLI_QuiesceFreezeErrors(t *testing.T) {
	cg := freezertest.New(t, false)
	dir := testtree.New(t)
	v2, _, _ := freezer.Mounts()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--quiesce", "freeze"}, "needs --cgroup PATH or --unit NAME"},
		{[]string{"--quiesce", "freeze", "--cgroup", "/no/such/cgroup"}, "does not exist"},
		{[]string{"--quiesce", "freeze", "--cgroup", v2}, "root cgroup"},
		{[]string{"--quiesce", "freeze", "--cgroup", cg.Dir, "--unit", "x.service"}, "not both"},
		{[]string{"--cgroup", cg.Dir}, "need --quiesce freeze"},
		{[]string{"--pid-file", "/tmp/x"}, "needs --quiesce signal"},
		{[]string{"--quiesce", "signal"}, "needs --pid-file"},
	} {
		code, _, stderr := hs(t, append([]string{"create", "--data-dir", dir}, tc.args...)...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, %q; want exit 2 saying %q", tc.args, code, stderr, tc.want)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "backups")); len(ents) != 0 {
		t.Fatalf("a refused create left %v", ents)
	}

	// --unit: with no systemd (PATH without systemctl) the error says so;
	// with a stand-in systemctl that answers as systemd does (this machine
	// runs no systemd), the unit's cgroup is frozen.
	t.Setenv("PATH", t.TempDir())
	code, _, stderr := hs(t, "create", "--data-dir", dir, "--quiesce", "freeze", "--unit", "app.service")
	if code != 2 || !strings.Contains(stderr, "systemd") {
		t.Fatalf("--unit without systemctl: exit %d, %q", code, stderr)
	}
	fake := filepath.Join(os.Getenv("PATH"), "systemctl")
	script := "#!/bin/sh\n[ \"$*\" = \"show --property=ControlGroup --value -- app.service\" ] || exit 1\necho /" + filepath.Base(cg.Dir) + "\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := hs(t, "create", "--data-dir", dir, "--quiesce", "freeze", "--unit", "app.service", "--json")
	if code != 0 || !strings.Contains(out, `"lockAttempts":1`) {
		t.Fatalf("--unit: exit %d, %s %s", code, out, stderr)
	}
}

// startTree starts the busy process tree in its own process group and
// writes its pid file (owned by root).
func startTree(t *testing.T) (pid int, pidFile string, files []string) {
	t.Helper()
	tmp := t.TempDir()
	f := filepath.Join(tmp, "n")
	cmd := exec.Command("sh", "-c", freezertest.Busy, f)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	})
	pidFile = filepath.Join(tmp, "app.pid")
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	files = freezertest.BusyFiles(f)
	freezertest.WaitAdvancing(t, files...)
	return cmd.Process.Pid, pidFile, files
}

// TestCLI_QuiesceSignal: as TestCLI_QuiesceFreeze, with SIGSTOP/SIGCONT of
// a process tree named by a pid file.
func TestCLI_QuiesceSignal(t *testing.T) {
	bin := buildTestBinary(t)
	_, pidFile, files := startTree(t)
	dir := testtree.New(t)
	args := func(label string) []string {
		return []string{"create", "--data-dir", dir, "--quiesce", "signal", "--pid-file", pidFile, "--label", label, "--json"}
	}
	if out, err := exec.Command(bin, args("ok")...).Output(); err != nil {
		t.Fatalf("create: %v %s", err, out)
	}
	freezertest.WaitAdvancing(t, files...)

	cmd := hangAt(t, bin, "create.locked", args("sigint")...)
	freezertest.StaysStill(t, files...)
	cmd.Process.Signal(syscall.SIGTERM)
	if code := procExit(cmd.Wait()); code == 0 {
		t.Fatal("an interrupted create succeeded")
	}
	freezertest.WaitAdvancing(t, files...)
	if r := thawRecords(t, dir); len(r) != 0 {
		t.Fatalf("records left: %v", r)
	}

	cmd = exec.Command(bin, args("killed")...)
	cmd.Env = append(os.Environ(), "HOTSNAP_CRASH_AT=create.locked")
	cmd.Run()
	freezertest.StaysStill(t, files...)
	out, err := exec.Command(bin, "recover", "--data-dir", dir, "--json").Output()
	if err != nil || !strings.Contains(string(out), "SIGCONT") {
		t.Fatalf("recover: %v %s", err, out)
	}
	freezertest.WaitAdvancing(t, files...)
	if r := thawRecords(t, dir); len(r) != 0 {
		t.Fatalf("records left: %v", r)
	}
}

// TestSecurity_SignalPidFile: a pid file the application's user can write
// must not aim hotsnap (root) at another user's process, nor at init or
// hotsnap itself.
func TestSecurity_SignalPidFile(t *testing.T) {
	testuser.RequireRoot(t)
	victim, _, files := startTree(t) // root's processes
	dir := testtree.New(t)
	tmp := t.TempDir()
	os.Chmod(tmp, 0o755)
	hostile := filepath.Join(tmp, "app.pid")
	if err := os.WriteFile(hostile, []byte(strconv.Itoa(victim)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(hostile, testuser.UID, testuser.GID); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := hs(t, "create", "--data-dir", dir, "--quiesce", "signal", "--pid-file", hostile)
	if code != 4 || !strings.Contains(stderr, "another user's process") {
		t.Fatalf("a user's pid file naming root's process: exit %d, %q; want 4", code, stderr)
	}
	freezertest.WaitAdvancing(t, files...) // never stopped
	for _, tc := range []struct{ content, want string }{
		{"1", "pid 1"},
		{strconv.Itoa(os.Getpid()), "hotsnap itself"},
		{"nonsense", "does not hold a pid"},
	} {
		os.WriteFile(hostile, []byte(tc.content), 0o644)
		code, _, stderr := hs(t, "create", "--data-dir", dir, "--quiesce", "signal", "--pid-file", hostile)
		if code == 0 || !strings.Contains(stderr, tc.want) {
			t.Errorf("pid file %q: exit %d, %q", tc.content, code, stderr)
		}
	}
	// A symlink as the pid file is not followed.
	os.Remove(hostile)
	os.Symlink("/proc/self/stat", hostile)
	if code, _, stderr := hs(t, "create", "--data-dir", dir, "--quiesce", "signal", "--pid-file", hostile); code == 0 {
		t.Errorf("a symlinked pid file was followed: %q", stderr)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "backups")); len(ents) != 0 {
		t.Fatalf("a refused create left %v", ents)
	}
}
