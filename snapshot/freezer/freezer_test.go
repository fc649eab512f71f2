package freezer_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hotsnap/hotsnap/snapshot/freezer"
	"github.com/hotsnap/hotsnap/snapshot/freezer/freezertest"
)

func TestCgroupFreezeThaw(t *testing.T) {
	for _, v1 := range []bool{false, true} {
		t.Run(map[bool]string{false: "v2", true: "v1"}[v1], func(t *testing.T) {
			cg := freezertest.New(t, v1)
			f := filepath.Join(t.TempDir(), "n")
			freezertest.Start(t, cg, "sh", "-c", freezertest.Busy, f)
			files := freezertest.BusyFiles(f)
			freezertest.WaitAdvancing(t, files...)
			if err := cg.Freeze(context.Background(), time.Now().Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
			if fr, err := cg.Frozen(); err != nil || !fr {
				t.Fatalf("frozen %v, %v", fr, err)
			}
			freezertest.StaysStill(t, files...)
			if err := cg.Thaw(); err != nil {
				t.Fatal(err)
			}
			freezertest.WaitAdvancing(t, files...)
			// Found by its path in the mount, and by its path from the root.
			got, err := freezer.Find(cg.Dir)
			if err != nil || got != cg {
				t.Fatalf("Find(%s) = %+v, %v", cg.Dir, got, err)
			}
			if !v1 {
				got, err = freezer.Find("/" + filepath.Base(cg.Dir))
				if err != nil || got != cg {
					t.Fatalf("Find(/%s) = %+v, %v", filepath.Base(cg.Dir), got, err)
				}
			}
		})
	}
}

func TestFindRefuses(t *testing.T) {
	cg := freezertest.New(t, false)
	mount := filepath.Dir(cg.Dir)
	for _, tc := range []struct{ path, want string }{
		{mount, "root cgroup"},
		{"/", "root cgroup"},
		{"/no-such-cgroup-here", "does not exist"},
		{"", "no cgroup given"},
	} {
		if _, err := freezer.Find(tc.path); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Find(%q) = %v, want an error saying %q", tc.path, err, tc.want)
		}
	}
	// The cgroup hotsnap runs in would freeze hotsnap: move this test
	// process into a cgroup, ask for it (and its parent), move it back.
	inner := filepath.Join(cg.Dir, "inner")
	if err := os.Mkdir(inner, 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(inner)
	b, _ := os.ReadFile("/proc/self/cgroup")
	var home string
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "0::"); ok {
			home = filepath.Join(mount, rest)
		}
	}
	self := []byte(strconv.Itoa(os.Getpid()))
	if err := os.WriteFile(filepath.Join(inner, "cgroup.procs"), self, 0); err != nil {
		t.Fatal(err)
	}
	_, err1 := freezer.Find(inner)
	_, err2 := freezer.Find(cg.Dir)
	if err := os.WriteFile(filepath.Join(home, "cgroup.procs"), self, 0); err != nil {
		t.Fatalf("move the test back to %s: %v", home, err)
	}
	for _, err := range []error{err1, err2} {
		if err == nil || !strings.Contains(err.Error(), "would freeze hotsnap") {
			t.Errorf("freezing our own cgroup: %v", err)
		}
	}
}

// TestTreeStopCont needs no root: a process may stop its own children.
func TestTreeStopCont(t *testing.T) {
	f := filepath.Join(t.TempDir(), "n")
	cmd := exec.Command("sh", "-c", freezertest.Busy, f)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	}()
	files := freezertest.BusyFiles(f)
	freezertest.WaitAdvancing(t, files...)
	tree := &freezer.Tree{Root: cmd.Process.Pid}
	var recorded [][]freezer.Ident
	err := tree.Stop(context.Background(), time.Now().Add(time.Minute), func(ids []freezer.Ident) error {
		recorded = append(recorded, append([]freezer.Ident(nil), ids...))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	stopped := tree.Stopped()
	// The root, the two loops it forked, the subshell and its loop at least
	// (a subshell's command may be forked or exec'd by the shell).
	if len(stopped) < 4 {
		t.Fatalf("stopped %d processes: %+v", len(stopped), stopped)
	}
	if last := recorded[len(recorded)-1]; len(last) != len(stopped) {
		t.Fatalf("the record names %d processes, %d were stopped", len(last), len(stopped))
	}
	for _, id := range stopped {
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(id.Pid) + "/stat")
		s := string(b)
		if st := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])[0]; st != "T" {
			t.Errorf("process %d is in state %s, want T (stopped)", id.Pid, st)
		}
	}
	freezertest.StaysStill(t, files...)
	if err := tree.Cont(); err != nil {
		t.Fatal(err)
	}
	freezertest.WaitAdvancing(t, files...)

	// A pid held by another process than the one recorded is never signalled.
	if _, err := freezer.OpenProc(cmd.Process.Pid, stopped[0].Start+1); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("OpenProc with another start time: %v", err)
	}
}
