// Package freezertest makes real cgroups for the freeze quiescer's tests:
// one under the cgroup2 mount (or the v1 freezer), processes started
// inside it, everything killed and removed when the test ends. The tests
// run as root; in CI a machine without a cgroup freezer fails them.
package freezertest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hotsnap/hotsnap/snapshot/freezer"
)

// New creates an empty cgroup (v1: in the v1 freezer hierarchy) and
// returns it; the cgroup, and any process still in it, goes at cleanup.
func New(t testing.TB, v1 bool) freezer.Cgroup {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("cgroup tests need root (CI runs as root)")
		}
		t.Skip("cgroup tests need root")
	}
	v2m, v1m, err := freezer.Mounts()
	if err != nil {
		t.Fatal(err)
	}
	mount, kind := v2m, "cgroup2"
	if v1 {
		mount, kind = v1m, "the v1 freezer"
	}
	if mount == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("this machine has no %s mount", kind)
		}
		t.Skipf("this machine has no %s mount", kind)
	}
	dir := filepath.Join(mount, fmt.Sprintf("hotsnap-test-%d-%d", os.Getpid(), time.Now().UnixNano()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cg := freezer.Cgroup{Dir: dir, V1: v1}
	t.Cleanup(func() { remove(t, cg) })
	return cg
}

// Procs lists the pids in the cgroup.
func Procs(t testing.TB, cg freezer.Cgroup) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(cg.Dir, "cgroup.procs"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(b))
}

func remove(t testing.TB, cg freezer.Cgroup) {
	killAll(cg)
	if err := os.Remove(cg.Dir); err != nil {
		t.Errorf("remove cgroup %s: %v", cg.Dir, err)
	}
}

// killAll kills every process of the cgroup and waits until it is empty.
func killAll(cg freezer.Cgroup) {
	cg.Thaw()
	for i := 0; i < 500; i++ {
		b, _ := os.ReadFile(filepath.Join(cg.Dir, "cgroup.procs"))
		pids := strings.Fields(string(b))
		if len(pids) == 0 {
			break
		}
		for _, p := range pids {
			exec.Command("kill", "-KILL", p).Run()
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Start starts name args... inside the cgroup: a shell moves itself into
// it, then execs the command, so the command and all it forks are in the
// cgroup from their first instruction. Everything in the cgroup is
// killed at cleanup.
func Start(t testing.TB, cg freezer.Cgroup, name string, args ...string) *exec.Cmd {
	t.Helper()
	script := `echo $$ > "$0/cgroup.procs" && exec "$@"`
	cmd := exec.Command("sh", append([]string{"-c", script, cg.Dir, name}, args...)...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		killAll(cg)
		cmd.Wait()
	})
	// Wait until it is in.
	for i := 0; ; i++ {
		for _, p := range Procs(t, cg) {
			if p == fmt.Sprint(cmd.Process.Pid) {
				return cmd
			}
		}
		if i > 2000 {
			t.Fatalf("process %d never joined cgroup %s", cmd.Process.Pid, cg.Dir)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
