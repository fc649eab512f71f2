package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/hotsnap/hotsnap/internal/testutil/testserver"
	"github.com/hotsnap/hotsnap/internal/testutil/testtree"
)

// immutableSetup is a MinIO with the two users of docs/policies (their
// JSON as an operator pastes it, for bucket vault and prefix a), and a
// data dir with a few MiB of random data.
type immutableSetup struct {
	m                  *testserver.MinIO
	bin, dir           string
	root, up, extender []string // credentials in the environment
	remote             []string
}

func newImmutable(t *testing.T) *immutableSetup {
	s := &immutableSetup{m: testserver.StartMinIO(t), bin: buildTestBinary(t), dir: testtree.New(t)}
	for user, file := range map[string]string{"uploader": "uploader.json", "extender": "uploader-extend.json"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "docs", "policies", file))
		if err != nil {
			t.Fatal(err)
		}
		b = bytes.ReplaceAll(bytes.ReplaceAll(b, []byte("BUCKET"), []byte("vault")), []byte("PREFIX"), []byte("a"))
		s.m.AddUser(t, user, user+"-secret", b)
	}
	s.root = []string{"AWS_ACCESS_KEY_ID=" + testserver.MinIOUser, "AWS_SECRET_ACCESS_KEY=" + testserver.MinIOPassword}
	s.up = []string{"AWS_ACCESS_KEY_ID=uploader", "AWS_SECRET_ACCESS_KEY=uploader-secret"}
	s.extender = []string{"AWS_ACCESS_KEY_ID=extender", "AWS_SECRET_ACCESS_KEY=extender-secret"}
	s.remote = []string{"--remote", "s3://vault/a", "--s3-endpoint", "http://" + s.m.Endpoint}
	s.addData(t, "big1", 3<<20)
	return s
}

func (s *immutableSetup) addData(t *testing.T, name string, n int) {
	b := make([]byte, n)
	rand.Read(b)
	if err := os.WriteFile(filepath.Join(s.dir, name), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// run runs hotsnap with env and the remote flags; it must exit with code.
func (s *immutableSetup) run(t *testing.T, env []string, code int, args ...string) string {
	t.Helper()
	got, out, _ := faultRun(t, s.bin, env, append(args, s.remote...)...)
	if got != code {
		t.Fatalf("hotsnap %s: exit %d (want %d): %s", strings.Join(args, " "), got, code, out)
	}
	return out
}

// result decodes a --json command's last line into v.
func result(t *testing.T, out string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(lastLine(out)), v); err != nil {
		t.Fatalf("result %q: %v", lastLine(out), err)
	}
}

func (s *immutableSetup) client(t *testing.T, user, secret string) *minio.Client {
	c, err := minio.New(s.m.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(user, secret, ""), MaxRetries: 1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type uploadJSON struct {
	FilesReused int64
	Retention   struct {
		ReusedPacks, Needed, Extended, Short int
		Warning                              string
	}
}

type checkJSON struct {
	Problems  []string
	Retention struct {
		Checked, Short, Repaired int
		NewestProtectedUntil     time.Time
	}
}

// TestArchive_Immutable (archive-immutable): an archive locked 2 days in
// compliance mode; two snapshots uploaded with the write-only uploader's
// credentials (docs/policies/uploader.json), the second reusing the
// first's packs; check proves every pack retained at least as long as the
// newest snapshot is protected. Then the attack: the uploader cannot
// delete anything, but overwrites every pack and the config with garbage;
// root deletes every current object; nobody deletes a locked version.
// After it, the archive read as of before the attack lists both snapshots,
// and each downloads, verified, equal to its local tree.
func TestArchive_Immutable(t *testing.T) {
	s := newImmutable(t)
	out := s.run(t, s.root, 0, "archive", "init", "--object-lock-days", "2", "--object-lock-mode", "compliance", "--pack-size", "1048576", "--json")
	if !strings.Contains(out, `"mode":"compliance"`) {
		t.Fatalf("init: %s", out)
	}
	id1 := createID(t, "--data-dir", s.dir, "--quiesce", "none")
	s.run(t, s.up, 0, "upload", "--data-dir", s.dir, "--id", id1, "--json")
	s.addData(t, "big2", 2<<20)
	id2 := createID(t, "--data-dir", s.dir, "--quiesce", "none")
	var up uploadJSON
	result(t, s.run(t, s.up, 0, "upload", "--data-dir", s.dir, "--id", id2, "--json"), &up)
	t.Logf("second upload: %+v", up)
	if up.FilesReused == 0 || up.Retention.ReusedPacks == 0 || up.Retention.Short != 0 {
		t.Fatalf("the second upload reused no pack, or left some short: %+v", up)
	}
	var ck checkJSON
	result(t, s.run(t, s.root, 0, "archive", "check", "--json"), &ck)
	if ck.Retention.Checked == 0 || ck.Retention.Short != 0 || len(ck.Problems) != 0 {
		t.Fatalf("check: %+v", ck)
	}

	// Every pack is retained at least until the newest snapshot's
	// protection ends (its upload time + 2 days), by the server's word.
	ctx := context.Background()
	rootC := s.client(t, testserver.MinIOUser, testserver.MinIOPassword)
	var newest time.Time
	for o := range rootC.ListObjects(ctx, "vault", minio.ListObjectsOptions{Prefix: "a/snapshots/", Recursive: true}) {
		if o.LastModified.After(newest) {
			newest = o.LastModified
		}
	}
	var packs []string
	for o := range rootC.ListObjects(ctx, "vault", minio.ListObjectsOptions{Prefix: "a/packs/", Recursive: true}) {
		packs = append(packs, o.Key)
		mode, until, err := rootC.GetObjectRetention(ctx, "vault", o.Key, "")
		if err != nil || *mode != minio.Compliance || until.Before(newest.Add(48*time.Hour)) {
			t.Fatalf("%s retained %v %v (err %v), want compliance until after %v", o.Key, mode, until, err, newest.Add(48*time.Hour))
		}
	}
	if len(packs) < 3 {
		t.Fatalf("only %d packs: the test wants several", len(packs))
	}

	before := time.Now().UTC()
	time.Sleep(20 * time.Millisecond) // the attack's versions come strictly later

	// The uploader: no delete outside locks/, but overwrites.
	upC := s.client(t, "uploader", "uploader-secret")
	for _, k := range append(packs, "a/config") {
		if err := upC.RemoveObject(ctx, "vault", k, minio.RemoveObjectOptions{}); err == nil || minio.ToErrorResponse(err).Code != "AccessDenied" {
			t.Fatalf("the uploader deleted %s: %v", k, err)
		}
		junk := []byte("garbage " + k)
		if _, err := upC.PutObject(ctx, "vault", k, bytes.NewReader(junk), int64(len(junk)), minio.PutObjectOptions{}); err != nil {
			t.Fatalf("the uploader's overwrite of %s: %v", k, err)
		}
	}
	// Root: every current object deleted; a locked version stays.
	var versions []minio.ObjectInfo
	for o := range rootC.ListObjects(ctx, "vault", minio.ListObjectsOptions{Prefix: "a/", Recursive: true, WithVersions: true}) {
		versions = append(versions, o)
	}
	for o := range rootC.ListObjects(ctx, "vault", minio.ListObjectsOptions{Prefix: "a/", Recursive: true}) {
		if err := rootC.RemoveObject(ctx, "vault", o.Key, minio.RemoveObjectOptions{}); err != nil {
			t.Fatalf("root's delete of %s: %v", o.Key, err)
		}
	}
	for _, v := range versions {
		if strings.HasPrefix(v.Key, "a/packs/") && !v.IsDeleteMarker {
			err := rootC.RemoveObject(ctx, "vault", v.Key, minio.RemoveObjectOptions{VersionID: v.VersionID, GovernanceBypass: true})
			if err == nil {
				t.Fatalf("root deleted the locked version %s of %s", v.VersionID, v.Key)
			}
		}
	}
	if out := s.run(t, s.root, 1, "archive", "ls", "--as-of", time.Now().UTC().Format(time.RFC3339Nano)); !strings.Contains(out, "not initialised") {
		t.Fatalf("the archive as of now, after the attack: %s", out)
	}
	if out := s.run(t, s.root, 1, "archive", "ls"); !strings.Contains(out, "not initialised") {
		t.Fatalf("the archive now, after the attack: %s", out)
	}

	// As of before the attack: both snapshots, each whole.
	asOf := before.Format(time.RFC3339Nano)
	out = s.run(t, s.root, 0, "archive", "ls", "--json", "--as-of", asOf)
	if !strings.Contains(out, id1) || !strings.Contains(out, id2) {
		t.Fatalf("archive ls --as-of: %s", out)
	}
	for _, id := range []string{id1, id2} {
		target := filepath.Join(t.TempDir(), "restored")
		s.run(t, s.root, 0, "download", "--id", id, "--target", target, "--as-of", asOf)
		want := testtree.Snapshot(t, filepath.Join(s.dir, "backups", id, "data"))
		if d := testtree.Diff(want, testtree.Snapshot(t, target)); d != "" {
			t.Fatalf("download --as-of of %s differs from the snapshot:\n%s", id, d)
		}
	}
	s.run(t, s.root, 0, "archive", "check", "--read-data", "--as-of", asOf)
	for _, c := range [][]string{{"ls", id2, "big2"}, {"cat", id1, "a.txt"}} {
		args := append(append([]string{c[0], "--data-dir", s.dir, "--id", c[1], "--as-of", asOf}, s.remote...), c[2])
		if code, out, _ := faultRun(t, s.bin, s.root, args...); code != 0 || out == "" {
			t.Fatalf("hotsnap %s as of before the attack: exit %d %q", c[0], code, out)
		}
	}
}

// shorten sets, with the governance bypass, the retention of every
// version under prefix to until: what time does to a lock, made quick.
func shorten(t *testing.T, c *minio.Client, prefix string, until time.Time) int {
	t.Helper()
	ctx := context.Background()
	mode := minio.Governance
	n := 0
	for o := range c.ListObjects(ctx, "vault", minio.ListObjectsOptions{Prefix: prefix, Recursive: true, WithVersions: true}) {
		if o.IsDeleteMarker {
			continue
		}
		err := c.PutObjectRetention(ctx, "vault", o.Key, minio.PutObjectRetentionOptions{GovernanceBypass: true, Mode: &mode, RetainUntilDate: &until, VersionID: o.VersionID})
		if err != nil {
			t.Fatalf("shorten %s: %v", o.Key, err)
		}
		n++
	}
	return n
}

func countVersions(t *testing.T, c *minio.Client) int {
	n := 0
	for range c.ListObjects(context.Background(), "vault", minio.ListObjectsOptions{Prefix: "a/", Recursive: true, WithVersions: true}) {
		n++
	}
	return n
}

// TestArchive_ImmutableRetention: in governance mode (whose locks root
// may shorten, standing in for time passing), an upload whose reused
// objects' locks end too early extends them (extend-only uploader), or,
// with the strict uploader, succeeds with a warning that check confirms
// and check --repair-retention mends; an upload right after makes no
// retention call at all (the slack); forget keeps retained snapshots,
// saying until when; once locks have passed, forget removes and gc
// purges the old versions, and what is kept still checks and downloads.
func TestArchive_ImmutableRetention(t *testing.T) {
	s := newImmutable(t)
	rootC := s.client(t, testserver.MinIOUser, testserver.MinIOPassword)
	s.run(t, s.root, 0, "archive", "init", "--object-lock-days", "2", "--pack-size", "1048576")
	id1 := createID(t, "--data-dir", s.dir, "--quiesce", "none")
	s.run(t, s.up, 0, "upload", "--data-dir", s.dir, "--id", id1)

	soon := time.Now().Add(time.Hour)
	shortened := 0
	for _, p := range []string{"a/packs/", "a/index/", "a/config"} {
		shortened += shorten(t, rootC, p, soon)
	}

	// The strict uploader may not extend: the upload succeeds and says so.
	s.addData(t, "big2", 2<<20)
	id2 := createID(t, "--data-dir", s.dir, "--quiesce", "none")
	var up uploadJSON
	out := s.run(t, s.up, 0, "upload", "--data-dir", s.dir, "--id", id2, "--json")
	result(t, out, &up)
	if up.Retention.Short == 0 || up.Retention.Extended != 0 || !strings.Contains(out, "--repair-retention") {
		t.Fatalf("strict uploader with short locks: %+v\n%s", up, out)
	}
	var ck checkJSON
	result(t, s.run(t, s.root, 4, "archive", "check", "--json"), &ck)
	if ck.Retention.Short == 0 || len(ck.Problems) == 0 || !strings.Contains(ck.Problems[0], "is retained until") {
		t.Fatalf("check of short locks: %+v", ck)
	}
	result(t, s.run(t, s.root, 0, "archive", "check", "--repair-retention", "--json"), &ck)
	if ck.Retention.Repaired != ck.Retention.Short || ck.Retention.Short == 0 {
		t.Fatalf("check --repair-retention: %+v", ck)
	}
	result(t, s.run(t, s.root, 0, "archive", "check", "--json"), &ck)
	if ck.Retention.Short != 0 {
		t.Fatalf("check after the repair: %+v", ck)
	}

	// The extend-only uploader extends what is short, and only that.
	shortened = 0
	for _, p := range []string{"a/packs/", "a/index/", "a/config"} {
		shortened += shorten(t, rootC, p, soon)
	}
	s.addData(t, "big3", 1<<20)
	id3 := createID(t, "--data-dir", s.dir, "--quiesce", "none")
	result(t, s.run(t, s.extender, 0, "upload", "--data-dir", s.dir, "--id", id3, "--json"), &up)
	t.Logf("upload after locks were shortened: %d reused packs, %d objects needed, %d retention calls", up.Retention.ReusedPacks, up.Retention.Needed, up.Retention.Extended)
	if up.Retention.Short != 0 || up.Retention.Extended == 0 || up.Retention.Extended > up.Retention.Needed {
		t.Fatalf("extend-only uploader: %+v", up)
	}
	s.addData(t, "big4", 1<<20)
	id4 := createID(t, "--data-dir", s.dir, "--quiesce", "none")
	result(t, s.run(t, s.extender, 0, "upload", "--data-dir", s.dir, "--id", id4, "--json"), &up)
	t.Logf("incremental upload right after: %d reused packs, %d objects needed, %d retention calls", up.Retention.ReusedPacks, up.Retention.Needed, up.Retention.Extended)
	if up.Retention.Extended != 0 || up.Retention.ReusedPacks == 0 {
		t.Fatalf("an upload right after another extended again: %+v", up)
	}
	// What only id2 needs (its own streams) was shortened too, and no
	// later upload needed it: check repairs it.
	s.run(t, s.root, 0, "archive", "check", "--repair-retention")
	result(t, s.run(t, s.root, 0, "archive", "check", "--json"), &ck)
	if ck.Retention.Short != 0 {
		t.Fatalf("check: %+v", ck)
	}

	// forget keeps what is retained, saying until when.
	out = s.run(t, s.root, 0, "archive", "forget", "--keep-last", "1", "--json")
	if !strings.Contains(out, "retained until") || strings.Contains(out, `"remove":[{`) {
		t.Fatalf("forget of retained snapshots: %s", out)
	}

	// Time passes for id1: its locks end; forget removes it, gc purges.
	past := time.Now().Add(2 * time.Second)
	shorten(t, rootC, "a/snapshots/"+id1+"/", past)
	shorten(t, rootC, "a/locks/", past)
	time.Sleep(time.Until(past) + 500*time.Millisecond) // the server's clock must pass the date
	out = s.run(t, s.root, 0, "archive", "forget", "--keep-last", "1", "--json")
	if !strings.Contains(out, `"remove":[{"id":"`+id1) {
		t.Fatalf("forget after id1's lock ended: %s", out)
	}
	before := countVersions(t, rootC)
	var gc struct{ VersionsRemoved, VersionsRetained int }
	result(t, s.run(t, s.root, 0, "archive", "gc", "--json"), &gc)
	after := countVersions(t, rootC)
	t.Logf("gc: %+v; versions %d -> %d", gc, before, after)
	if gc.VersionsRemoved == 0 || after >= before {
		t.Fatalf("gc removed no old version: %+v, %d -> %d versions", gc, before, after)
	}
	s.run(t, s.root, 0, "archive", "check", "--read-data")
	if out := s.run(t, s.root, 0, "archive", "ls"); strings.Contains(out, id1) || !strings.Contains(out, id4) {
		t.Fatalf("archive ls after forget and gc: %s", out)
	}
	target := filepath.Join(t.TempDir(), "restored")
	s.run(t, s.root, 0, "download", "--id", id4, "--target", target)
	if d := testtree.Diff(testtree.Snapshot(t, filepath.Join(s.dir, "backups", id4, "data")), testtree.Snapshot(t, target)); d != "" {
		t.Fatalf("download after gc:\n%s", d)
	}
}

// TestCLI_ImmutableUsage: what cannot be locked or read as of a time is
// refused before anything is written.
func TestCLI_ImmutableUsage(t *testing.T) {
	repo := t.TempDir() + "/repo"
	mustCode(t, 2, "cannot lock objects", "archive", "init", "--remote", "file://"+repo, "--object-lock-days", "3")
	if _, err := os.Stat(filepath.Join(repo, "config")); err == nil {
		t.Fatal("a refused init wrote a config")
	}
	mustCode(t, 2, "needs --object-lock-days", "archive", "init", "--remote", "file://"+repo, "--object-lock-mode", "compliance")
	mustCode(t, 2, "want governance or compliance", "archive", "init", "--remote", "file://"+repo, "--object-lock-days", "3", "--object-lock-mode", "strict")
	mustCode(t, 2, "at least 1", "archive", "init", "--remote", "file://"+repo, "--object-lock-days", "0")
	mustCode(t, 0, "", "archive", "init", "--remote", "file://"+repo)
	mustCode(t, 2, "keeps no versions", "archive", "ls", "--remote", "file://"+repo, "--as-of", "2026-01-02")
	mustCode(t, 2, "want RFC 3339", "archive", "ls", "--remote", "file://"+repo, "--as-of", "yesterday")
	mustCode(t, 2, "in the future", "archive", "ls", "--remote", "file://"+repo, "--as-of", "2999-01-01")
	mustCode(t, 2, "needs an archive with an object lock", "archive", "check", "--remote", "file://"+repo, "--repair-retention")
}

// TestArchive_ImmutableStalled: the object lock's own calls (the bucket's
// lock settings at init, reading and extending retention at upload, the
// version listing of --as-of) are bounded like every remote call: against
// a stalled endpoint (SIGSTOP) each command fails with exit 1, "timed
// out", after --io-timeout and one retry; never a hang, never 130.
func TestArchive_ImmutableStalled(t *testing.T) {
	s := newImmutable(t)
	s.run(t, s.root, 0, "archive", "init", "--object-lock-days", "2")
	id := createID(t, "--data-dir", s.dir, "--quiesce", "none")
	s.run(t, s.root, 0, "upload", "--data-dir", s.dir, "--id", id)
	asOf := time.Now().UTC().Format(time.RFC3339Nano)
	s.m.Pause()
	defer s.m.Resume()
	for _, args := range [][]string{
		{"archive", "ls", "--as-of", asOf, "--io-timeout", "1s"},
		{"upload", "--data-dir", s.dir, "--id", id, "--io-timeout", "1s"},
		{"archive", "check", "--io-timeout", "1s"},
	} {
		out := s.run(t, s.root, exitError, args...)
		if !strings.Contains(out, "timed out") {
			t.Fatalf("hotsnap %s against a stalled endpoint: %s", strings.Join(args, " "), out)
		}
	}
	s.m.Resume()
	if out := s.run(t, s.root, 0, "archive", "ls", "--as-of", asOf); !strings.Contains(out, id) {
		t.Fatalf("archive ls --as-of after the endpoint came back: %s", out)
	}
}
