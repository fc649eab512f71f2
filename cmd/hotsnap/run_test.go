package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCLI_RunPolicy: hotsnap run --policy creates, uploads, prunes,
// forgets and gcs in one command with one JSON result; a failed step
// names itself, exits non-zero and leaves what came before it intact.
func TestCLI_RunPolicy(t *testing.T) {
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "data")
	os.MkdirAll(dir, 0o755)
	remote := "file://" + filepath.Join(tmp, "archive")
	pol := filepath.Join(tmp, "policy.json")
	// Labels only on the first run: ids are per second, and the three runs
	// come within one.
	writePolicy := func(label string) {
		os.WriteFile(pol, []byte(`{"label": "`+label+`", "remote": "`+remote+`",
		"keepLocal": {"last": 2}, "keepRemote": {"last": 2, "within": "1ms"}, "gc": true}`), 0o644)
	}
	var last struct {
		OK    bool
		ID    string
		Steps []struct {
			Step    string
			OK      bool
			Removed []string
		}
	}
	for i := range 3 {
		label := ""
		if i == 0 {
			label = "hourly"
		}
		writePolicy(label)
		os.WriteFile(filepath.Join(dir, "f"), []byte(strings.Repeat("x", 1000*(i+1))), 0o644)
		code, out, errb := hs(t, "run", "--data-dir", dir, "--policy", pol, "--quiesce", "none", "--json")
		if code != 0 {
			t.Fatalf("run %d: exit %d: %s %s", i, code, out, errb)
		}
		if err := json.Unmarshal([]byte(lastLine(out)), &last); err != nil || !last.OK || (i == 0) != strings.HasSuffix(last.ID, "_hourly") {
			t.Fatalf("run %d: %v %s", i, err, out)
		}
		var names []string
		for _, s := range last.Steps {
			names = append(names, s.Step)
		}
		if strings.Join(names, " ") != "remote create upload prune forget gc" {
			t.Fatalf("steps %v", names)
		}
	}
	if len(last.Steps[3].Removed) != 1 || len(last.Steps[4].Removed) != 1 {
		t.Fatalf("the third run pruned %v and forgot %v, want one each", last.Steps[3].Removed, last.Steps[4].Removed)
	}
	code, out, _ := hs(t, "list", "--data-dir", dir, "--json")
	if code != 0 || strings.Count(out, `"id"`) != 2 {
		t.Fatalf("local snapshots after 3 runs keeping 2: %s", out)
	}
	code, out, _ = hs(t, "archive", "ls", "--remote", remote, "--json")
	if code != 0 || strings.Count(out, `"id"`) != 2 || !strings.Contains(out, last.ID) {
		t.Fatalf("archived snapshots after 3 runs keeping 2: %s", out)
	}

	// The remote cannot be opened (it is a file): checked before anything
	// is created, the step is named, the exit is not 0, nothing changed.
	bad := filepath.Join(tmp, "notadir")
	os.WriteFile(bad, []byte("x"), 0o644)
	os.WriteFile(pol, []byte(`{"remote": "file://`+bad+`", "keepLocal": {"last": 1}}`), 0o644)
	code, out, _ = hs(t, "run", "--data-dir", dir, "--policy", pol, "--quiesce", "none", "--json")
	var failed struct {
		OK         bool
		FailedStep string
		ID         string
	}
	json.Unmarshal([]byte(strings.SplitN(out, "\n", 2)[0]), &failed)
	if code == 0 || failed.OK || failed.FailedStep != "remote" || failed.ID != "" {
		t.Fatalf("a remote that cannot be opened: exit %d: %s", code, out)
	}
	_, out, _ = hs(t, "list", "--data-dir", dir, "--json")
	if strings.Count(out, `"id"`) != 2 {
		t.Fatalf("a run whose remote cannot be opened must create and prune nothing: %s", out)
	}
	// The upload fails after the remote opened (a file the snapshot holds
	// cannot be read: made unreadable by a chmod of 000 is not enough as
	// root, so the archive's pack dir is made a file): the snapshot stays,
	// nothing is pruned, the step is named.
	os.WriteFile(pol, []byte(`{"remote": "`+remote+`", "keepLocal": {"last": 1}}`), 0o644)
	packs := filepath.Join(tmp, "archive", "packs")
	os.RemoveAll(packs)
	os.WriteFile(packs, []byte("x"), 0o644)
	os.WriteFile(filepath.Join(dir, "new"), []byte("new data"), 0o644)
	code, out, _ = hs(t, "run", "--data-dir", dir, "--policy", pol, "--quiesce", "none", "--json")
	json.Unmarshal([]byte(strings.SplitN(out, "\n", 2)[0]), &failed)
	if code == 0 || failed.OK || failed.FailedStep != "upload" || failed.ID == "" {
		t.Fatalf("a failed upload: exit %d: %s", code, out)
	}
	_, out, _ = hs(t, "list", "--data-dir", dir, "--json")
	if strings.Count(out, `"id"`) != 3 || !strings.Contains(out, failed.ID) {
		t.Fatalf("after a failed upload the snapshot must stay and nothing be pruned: %s", out)
	}

	for _, p := range []string{
		`{"keepLocal": {}}`,
		`{"keepRemote": {"last": 1}}`,
		`{"gc": true}`,
		`{"keepLocal": {"last": 1}, "keepLocals": {"last": 1}}`,
		`{"keepLocal": {"within": "a day"}}`,
		`not json`,
	} {
		os.WriteFile(pol, []byte(p), 0o644)
		if code, _, errb := hs(t, "run", "--data-dir", dir, "--policy", pol, "--quiesce", "none"); code != 2 {
			t.Errorf("policy %s: exit %d, want 2: %s", p, code, errb)
		}
	}
	_, out, _ = hs(t, "list", "--data-dir", dir, "--json")
	if strings.Count(out, `"id"`) != 3 {
		t.Fatalf("a refused policy took or removed snapshots: %s", out)
	}
}
