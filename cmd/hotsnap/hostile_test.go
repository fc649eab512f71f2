package main

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/hotsnap/hotsnap/internal/testutil/testtree"
)

// copyTree copies a directory tree (an archive) to dst.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func keysUnder(t *testing.T, root, prefix string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(filepath.Join(root, prefix), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.Contains(d.Name(), ".tmp-") {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// zstdOf compresses b as the archive does.
func zstdOf(b []byte) []byte {
	e, _ := zstd.NewWriter(nil)
	return e.EncodeAll(b, nil)
}

// TestSecurity_HostileRemote (security-hostile-remote): an archive whose
// index, snapshot object, streams and packs were crafted to lie (counts and
// lengths of gigabytes, overlapping extents, truncation) makes download
// and gc fail with a clear error naming what is wrong: never a panic,
// never exit 2 or 70, never more than a bounded amount of memory, never a
// snapshot left behind.
func TestSecurity_HostileRemote(t *testing.T) {
	bin := buildTestBinary(t)
	dir := testtree.New(t)
	os.WriteFile(filepath.Join(dir, "big"), make([]byte, 3<<20), 0o644)
	repo := filepath.Join(t.TempDir(), "repo")
	code, out, errs := hs(t, "create", "--data-dir", dir, "--json")
	if code != 0 {
		t.Fatal(out, errs)
	}
	id := jsonField(t, []byte(out), "id")
	if code, out, errs := hs(t, "upload", "--data-dir", dir, "--id", id, "--remote", "file://"+repo, "-q"); code != 0 {
		t.Fatal(out, errs)
	}
	pack := keysUnder(t, repo, "packs")[0]
	packID, _ := hex.DecodeString(filepath.Base(pack))
	packSize := func() int64 { fi, _ := os.Stat(pack); return fi.Size() }()

	// One binary index object of one pack with the given blobs.
	indexOf := func(npacks uint32, blobs [][4]uint32) []byte {
		b := []byte("HSIDX002")
		b = binary.LittleEndian.AppendUint32(b, npacks)
		b = append(b, packID...)
		b = binary.LittleEndian.AppendUint64(b, uint64(packSize))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(blobs)))
		for i, bl := range blobs {
			id := make([]byte, 32)
			id[0] = byte(i)
			b = append(b, id...)
			for _, v := range bl[:3] {
				b = binary.LittleEndian.AppendUint32(b, v)
			}
		}
		return zstdOf(b)
	}
	snapObj := func(r string) string { return keysUnder(t, r, "snapshots")[0] }
	editSnapshot := func(r string, edit func(m map[string]any)) {
		p := snapObj(r)
		b, _ := os.ReadFile(p)
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		edit(m)
		b, _ = json.Marshal(m)
		os.WriteFile(p, b, 0o600)
	}
	cases := []struct {
		name  string
		plant func(r string)
		says  string
	}{
		{"index claiming 4 billion packs", func(r string) {
			os.WriteFile(keysUnder(t, r, "index")[0], zstdOf(append([]byte("HSIDX002"), 0xff, 0xff, 0xff, 0xff)), 0o600)
		}, "claims 4294967295 packs"},
		{"index with overlapping extents", func(r string) {
			os.WriteFile(keysUnder(t, r, "index")[0], indexOf(1, [][4]uint32{{0, 100, 50}, {50, 100, 50}}), 0o600)
		}, "does not fit the pack"},
		{"index with a blob of 4 GiB", func(r string) {
			os.WriteFile(keysUnder(t, r, "index")[0], indexOf(1, [][4]uint32{{0, 0xfffffff0, 0xfffffff0}}), 0o600)
		}, "does not fit the pack"},
		{"index that decompresses to a gigabyte", func(r string) {
			os.WriteFile(keysUnder(t, r, "index")[0], zstdOf(make([]byte, 1<<30)), 0o600)
		}, "does not decompress within"},
		{"index truncated", func(r string) {
			p := keysUnder(t, r, "index")[0]
			b, _ := os.ReadFile(p)
			os.WriteFile(p, b[:len(b)/2], 0o600)
		}, "index/"},
		{"manifest stream claiming a petabyte", func(r string) {
			editSnapshot(r, func(m map[string]any) { m["manifest"].(map[string]any)["size"] = 1 << 50 })
		}, "stream of"},
		{"manifest stream of 100,000 chunks", func(r string) {
			editSnapshot(r, func(m map[string]any) {
				var ids []string
				for range 100_000 {
					ids = append(ids, strings.Repeat("ab", 32))
				}
				m["manifest"].(map[string]any)["chunks"] = ids
			})
		}, "cannot hold a stream"},
		{"content stream pointing at the manifest's chunks", func(r string) {
			editSnapshot(r, func(m map[string]any) { m["content"] = m["manifest"] })
		}, "content"},
		{"snapshot object of 64 MiB", func(r string) {
			os.WriteFile(snapObj(r), make([]byte, 64<<20), 0o600)
		}, "larger than it may be"},
		{"pack trailer of 4 GiB, pack truncated", func(r string) {
			for _, p := range keysUnder(t, r, "packs") {
				b, _ := os.ReadFile(p)
				binary.LittleEndian.PutUint32(b[len(b)-12:], 0xfffffff0)
				os.WriteFile(p, b[:len(b)/2], 0o600)
			}
			os.WriteFile(keysUnder(t, r, "index")[0], zstdOf([]byte("HSIDX002\x00\x00\x00\x00")), 0o600) // nothing indexed: trailers are read
		}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := filepath.Join(t.TempDir(), "repo")
			copyTree(t, repo, r)
			c.plant(r)
			fresh := filepath.Join(t.TempDir(), "data")
			os.Mkdir(fresh, 0o755)
			for _, args := range [][]string{
				{"download", "--data-dir", fresh, "--id", id, "--remote", "file://" + r, "--json"},
				{"archive", "gc", "--remote", "file://" + r, "--json"},
			} {
				// GNU time measures the peak RSS of hotsnap alone (a child's
				// own rusage would count the test's memory shared before exec).
				tf := filepath.Join(t.TempDir(), "time")
				cmd := exec.Command("/usr/bin/time", append([]string{"-f", "%M", "-o", tf, bin}, args...)...)
				out, _ := cmd.Output()
				code := cmd.ProcessState.ExitCode()
				tb, _ := os.ReadFile(tf)
				rss, _ := strconv.Atoi(strings.TrimSpace(string(tb[bytes.LastIndexByte(bytes.TrimSpace(tb), '\n')+1:]))) // KiB
				if code == 0 && args[0] == "download" {
					t.Fatalf("download from a hostile archive succeeded: %s", out)
				}
				if code == 2 || code == 70 || code < 0 {
					t.Fatalf("%s: exit %d (a usage error or a crash): %s", args[0], code, out)
				}
				if code != 0 && (!strings.Contains(string(out), `"error"`) || !strings.Contains(string(out), c.says)) {
					t.Fatalf("%s: exit %d without a clear error saying %q: %s", args[0], code, c.says, out)
				}
				if rss > 512<<10 {
					t.Fatalf("%s used %d MiB", args[0], rss>>10)
				}
				t.Logf("%s: exit %d, %d MiB, %.150s", args[0], code, rss>>10, out)
			}
			if out, err := exec.Command(bin, "list", "--data-dir", fresh, "--json").Output(); err != nil || strings.TrimSpace(string(out)) != `{"event":"result","snapshots":[]}` {
				t.Fatalf("a failed download left something: %s %v", out, err)
			}
		})
	}
}
