package freezer

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hotsnap/hotsnap/internal/proc"
	"github.com/hotsnap/hotsnap/internal/testutil/testuser"
)

// TestTree_SetuidDescendant: a process of the application's user that ran
// a setuid-root program has that program as a descendant; Stop stops the
// application's processes and leaves the setuid one running.
func TestTree_SetuidDescendant(t *testing.T) {
	testuser.RequireRoot(t)
	tmp := t.TempDir()
	for p := tmp; p != os.TempDir() && p != "/"; p = filepath.Dir(p) {
		os.Chmod(p, 0o755) // let the application's user through
	}
	suid := filepath.Join(tmp, "suid-sleep")
	b, err := os.ReadFile("/bin/sleep")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(suid, b, 0o755)
	if err := syscall.Chmod(suid, 0o4755); err != nil { // os.Chmod takes os.ModeSetuid, not 04000
		t.Fatal(err)
	}
	pidf := filepath.Join(tmp, "child.pid")
	os.WriteFile(pidf, nil, 0o666)
	os.Chmod(pidf, 0o666)
	cmd := exec.Command("/bin/sh", "-c", suid+" 300 & echo $! > "+pidf+"; sleep 300")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: &syscall.Credential{Uid: testuser.UID, Gid: testuser.GID}}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); cmd.Wait() })
	var child int
	for deadline := time.Now().Add(time.Minute); child == 0; time.Sleep(10 * time.Millisecond) {
		b, _ := os.ReadFile(pidf)
		child, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		if time.Now().After(deadline) {
			t.Fatal("the setuid child did not start")
		}
	}
	for deadline := time.Now().Add(time.Minute); !sameUserOr0(child); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the child did not become the setuid program")
		}
	}
	tree := &Tree{Root: cmd.Process.Pid}
	if err := tree.Stop(context.Background(), time.Now().Add(time.Minute), func([]Ident) error { return nil }); err != nil {
		t.Fatal(err)
	}
	defer tree.Cont()
	for _, id := range tree.Stopped() {
		if id.Pid == child {
			t.Fatalf("the setuid-root descendant %d was stopped", child)
		}
	}
	if st, _ := proc.ReadStat(child); st.State == 'T' {
		t.Fatalf("the setuid-root descendant is stopped (state %c)", st.State)
	}
	if st, _ := proc.ReadStat(cmd.Process.Pid); st.State != 'T' {
		t.Fatalf("the application's process is not stopped (state %c)", st.State)
	}
}

// sameUserOr0 reports whether pid's effective uid is root (the setuid
// program runs).
func sameUserOr0(pid int) bool {
	ids, err := uids(pid)
	return err == nil && ids[1] == 0
}
