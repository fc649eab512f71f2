package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/hotsnap/hotsnap/internal/testtree"
)

// buildTestBinary builds hotsnap with the hotsnaptest tag, whose crash points
// kill the process with SIGKILL at a named step (HOTSNAP_CRASH_AT).
func buildTestBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "hotsnap")
	cmd := exec.Command("go", "build", "-tags", "hotsnaptest", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// TestCrash_Create kills a real `hotsnap create` at every step and checks
// that no snapshot is listed, no partial folder is in backups/, and the next
// command removes what staging held.
func TestCrash_Create(t *testing.T) {
	bin := buildTestBinary(t)
	steps := []string{"create.locked", "create.linked", "create.resumed", "create.hashed", "create.manifest"}
	for _, step := range steps {
		t.Run(step, func(t *testing.T) {
			dir := testtree.New(t)
			before := testtree.Snapshot(t, dir)
			cmd := exec.Command(bin, "create", "--data-dir", dir, "--label", "crash")
			cmd.Env = append(os.Environ(), "HOTSNAP_CRASH_AT="+step)
			err := cmd.Run()
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("want the process killed at %s, got %v", step, err)
			}
			if ents, _ := os.ReadDir(filepath.Join(dir, "backups")); len(ents) != 0 {
				t.Fatalf("backups/ holds %v after a crash at %s", ents, step)
			}
			out, err := exec.Command(bin, "list", "--data-dir", dir, "--json").Output()
			if err != nil || strings.TrimSpace(string(out)) != "[]" {
				t.Fatalf("list after crash: %s %v", out, err)
			}
			if ents, _ := os.ReadDir(filepath.Join(dir, ".hotsnap", "staging")); len(ents) != 0 {
				t.Fatalf("the next command left staging: %v", ents)
			}
			// The live data is untouched, and a new create works.
			if d := testtree.Diff(before, testtree.Snapshot(t, dir, "backups")); d != "" && !onlyStateDir(d) {
				t.Fatalf("crash changed live data:\n%s", d)
			}
			if out, err := exec.Command(bin, "create", "--data-dir", dir).CombinedOutput(); err != nil {
				t.Fatalf("create after crash: %v %s", err, out)
			}
		})
	}
	// Killed just after the publishing rename: the snapshot is whole.
	t.Run("create.published", func(t *testing.T) {
		dir := testtree.New(t)
		cmd := exec.Command(bin, "create", "--data-dir", dir, "--label", "crash")
		cmd.Env = append(os.Environ(), "HOTSNAP_CRASH_AT=create.published")
		cmd.Run()
		out, err := exec.Command(bin, "list", "--data-dir", dir, "--json").Output()
		if err != nil || !strings.Contains(string(out), "_crash") {
			t.Fatalf("list: %s %v", out, err)
		}
		ids, _ := os.ReadDir(filepath.Join(dir, "backups"))
		if out, err := exec.Command(bin, "verify", "--data-dir", dir, "--id", ids[0].Name()).CombinedOutput(); err != nil {
			t.Fatalf("verify: %v %s", err, out)
		}
	})
	// Killed between the two halves of delete: the snapshot is gone from
	// list at once, and the next command finishes the removal.
	t.Run("delete.trashed", func(t *testing.T) {
		dir := testtree.New(t)
		if out, err := exec.Command(bin, "create", "--data-dir", dir, "--label", "x").CombinedOutput(); err != nil {
			t.Fatal(err, string(out))
		}
		ids, _ := os.ReadDir(filepath.Join(dir, "backups"))
		cmd := exec.Command(bin, "delete", "--data-dir", dir, "--id", ids[0].Name())
		cmd.Env = append(os.Environ(), "HOTSNAP_CRASH_AT=delete.trashed")
		cmd.Run()
		out, _ := exec.Command(bin, "recover", "--data-dir", dir, "--json").Output()
		if !strings.Contains(string(out), "trash") {
			t.Fatalf("recover did not report the trash: %s", out)
		}
		if ents, _ := os.ReadDir(filepath.Join(dir, ".hotsnap", "trash")); len(ents) != 0 {
			t.Fatalf("trash left: %v", ents)
		}
	})
}

// onlyStateDir reports whether a diff only concerns hotsnap's own state dir.
func onlyStateDir(d string) bool {
	for _, line := range strings.Split(strings.TrimSpace(d), "\n") {
		if !strings.Contains(line, ".hotsnap") {
			return false
		}
	}
	return true
}
