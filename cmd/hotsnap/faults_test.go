package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/hotsnap/hotsnap/internal/testutil/testserver"
	"github.com/hotsnap/hotsnap/internal/testutil/testtree"
	"github.com/hotsnap/hotsnap/internal/testutil/testuser"
)

// faultRun runs the hotsnap binary with env, with a deadline that only
// bounds a hang, and returns its exit code, output and how long it took.
func faultRun(t *testing.T, bin string, env []string, args ...string) (int, string, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	if ctx.Err() != nil {
		t.Fatalf("hotsnap %v hung: %s", args, out.String())
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
		if ws := ee.Sys().(syscall.WaitStatus); ws.Signaled() {
			code = -int(ws.Signal())
		}
	}
	return code, out.String(), took
}

// TestArchive_Faults (archive-faults): against a real MinIO, an endpoint
// given as an http:// URL works; a stalled endpoint (SIGSTOP) fails an
// upload with exit 1 after two calls of --io-timeout each saw no byte; a
// killed one fails it with exit 1 (never 130) in seconds; after kill -9 of
// a gc, a download right away succeeds (the dead holder's lock is stale at
// once); a remotes file with a misspelt key is refused naming it; and
// temporary credentials from MinIO's STS upload.
func TestArchive_Faults(t *testing.T) {
	m := testserver.StartMinIO(t)
	bin := buildTestBinary(t)
	dir := testtree.New(t)
	big := make([]byte, 6<<20)
	rand.Read(big)
	os.WriteFile(filepath.Join(dir, "big"), big, 0o644)
	env := []string{"AWS_ACCESS_KEY_ID=" + testserver.MinIOUser, "AWS_SECRET_ACCESS_KEY=" + testserver.MinIOPassword}
	remote := []string{"--remote", "s3://faults/p", "--s3-endpoint", "http://" + m.Endpoint}
	run := func(args ...string) (int, string, time.Duration) {
		t.Helper()
		return faultRun(t, bin, env, args...)
	}
	if code, out, _ := run(append([]string{"archive", "init"}, remote...)...); code != 0 {
		t.Fatalf("init over http://: exit %d %s", code, out)
	}
	id := createID(t, "--data-dir", dir, "--quiesce", "none")

	// Stalled: every call waits --io-timeout for a byte, is tried once
	// more, then the command fails.
	m.Pause()
	code, out, took := run(append([]string{"upload", "--data-dir", dir, "--id", id, "--io-timeout", "2s"}, remote...)...)
	m.Resume()
	t.Logf("upload against a stalled endpoint: exit %d after %v: %s", code, took.Round(10*time.Millisecond), lastLine(out))
	if code != exitError || !strings.Contains(out, "timed out") || !strings.Contains(out, "no byte moved for 2s") {
		t.Fatalf("upload against a stalled endpoint: exit %d %s", code, out)
	}

	// Killed: connection refused, retried 5 times in about 3 s.
	m.Stop()
	code, out, took = run(append([]string{"upload", "--data-dir", dir, "--id", id}, remote...)...)
	t.Logf("upload against a dead endpoint: exit %d after %v: %s", code, took.Round(10*time.Millisecond), lastLine(out))
	if code != exitError || !strings.Contains(out, "unavailable") || !strings.Contains(out, "connection refused") {
		t.Fatalf("upload against a dead endpoint: exit %d %s", code, out)
	}
	m.Start()
	if code, out, _ := run(append([]string{"upload", "--data-dir", dir, "--id", id}, remote...)...); code != 0 {
		t.Fatalf("upload: exit %d %s", code, out)
	}

	// gc killed with its exclusive lock held: a download right away works.
	code, out, _ = faultRun(t, bin, append(env, "HOTSNAP_CRASH_AT=gc.locked"), append([]string{"archive", "gc"}, remote...)...)
	if code != -int(syscall.SIGKILL) {
		t.Fatalf("gc not killed: exit %d %s", code, out)
	}
	mustCode(t, 0, "", "delete", "--data-dir", dir, "--id", id)
	if code, out, _ := run(append([]string{"download", "--data-dir", dir, "--id", id}, remote...)...); code != 0 {
		t.Fatalf("download after a killed gc: exit %d %s", code, out)
	}
	if code, out, _ := run(append([]string{"archive", "unlock", "--json"}, remote...)...); code != 0 || !strings.Contains(out, `"kept":[]`) {
		t.Fatalf("unlock: exit %d %s", code, out)
	}

	// A remotes file with a misspelt key.
	conf := filepath.Join(t.TempDir(), "remotes.json")
	os.WriteFile(conf, []byte(`{"m": {"type": "s3", "endpoint": "http://`+m.Endpoint+`", "access_key_id": "`+testserver.MinIOUser+`", "secret_acess_key": "x"}}`), 0o600)
	if code, out, _ := run("archive", "ls", "--remote", "m:faults/p", "--remote-config", conf); code != exitUsage || !strings.Contains(out, "secret_acess_key") {
		t.Fatalf("a misspelt key: exit %d %s", code, out)
	}

	// Temporary credentials from MinIO's STS, through the environment.
	sts, err := credentials.NewSTSAssumeRole("http://"+m.Endpoint, credentials.STSAssumeRoleOptions{AccessKey: testserver.MinIOUser, SecretKey: testserver.MinIOPassword})
	if err != nil {
		t.Fatal(err)
	}
	v, err := sts.Get()
	if err != nil || v.SessionToken == "" {
		t.Fatalf("assume role: %+v %v", v, err)
	}
	id2 := createID(t, "--data-dir", dir, "--quiesce", "none")
	temp := []string{"AWS_ACCESS_KEY_ID=" + v.AccessKeyID, "AWS_SECRET_ACCESS_KEY=" + v.SecretAccessKey, "AWS_SESSION_TOKEN=" + v.SessionToken}
	if code, out, _ := faultRun(t, bin, temp, append([]string{"upload", "--data-dir", dir, "--id", id2}, remote...)...); code != 0 {
		t.Fatalf("upload with temporary credentials: exit %d %s", code, out)
	}
	// And by the remotes file: assume_role exchanges the user's for them.
	os.WriteFile(conf, []byte(`{"m": {"type": "s3", "endpoint": "http://`+m.Endpoint+`", "access_key_id": "`+testserver.MinIOUser+`", "secret_access_key": "`+testserver.MinIOPassword+`", "assume_role": true}}`), 0o600)
	if code, out, _ := faultRun(t, bin, nil, "archive", "ls", "--remote", "m:faults/p", "--remote-config", conf); code != 0 || !strings.Contains(out, id2) {
		t.Fatalf("ls with assume_role: exit %d %s", code, out)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// TestDownload_FreeSpaceFirst: a download into a filesystem with less free
// space than the snapshot needs is refused before anything is written,
// with the numbers; with room it goes through.
func TestDownload_FreeSpaceFirst(t *testing.T) {
	testuser.RequireRoot(t)
	src := testtree.New(t)
	big := make([]byte, 6<<20)
	rand.Read(big)
	os.WriteFile(filepath.Join(src, "big"), big, 0o644)
	remote := "file://" + filepath.Join(t.TempDir(), "archive")
	mustCode(t, 0, "", "archive", "init", "--remote", remote)
	id := createID(t, "--data-dir", src, "--quiesce", "none")
	mustCode(t, 0, "", "upload", "--data-dir", src, "--id", id, "--remote", remote)
	small := t.TempDir()
	if err := syscall.Mount("tmpfs", small, "tmpfs", 0, "size=4m"); err != nil {
		t.Fatalf("mount a 4 MiB tmpfs: %v", err)
	}
	defer syscall.Unmount(small, syscall.MNT_DETACH)
	data := filepath.Join(small, "data")
	os.Mkdir(data, 0o755)
	out := mustCode(t, exitError, "needs up to", "download", "--data-dir", data, "--id", id, "--remote", remote)
	_ = out
	if ents, _ := os.ReadDir(filepath.Join(data, "backups")); len(ents) != 0 {
		t.Fatalf("a refused download left %v", ents)
	}
	if err := syscall.Mount("tmpfs", small, "tmpfs", syscall.MS_REMOUNT, "size=64m"); err != nil {
		t.Fatal(err)
	}
	mustCode(t, 0, "", "download", "--data-dir", data, "--id", id, "--remote", remote)
}

// TestRestore_FreeSpaceFirst: a restore --target into a filesystem with
// less free space than the snapshot's bytes, and a restore whose copied
// files do not fit, are refused before anything is written.
func TestRestore_FreeSpaceFirst(t *testing.T) {
	testuser.RequireRoot(t)
	small := t.TempDir()
	if err := syscall.Mount("tmpfs", small, "tmpfs", 0, "size=16m"); err != nil {
		t.Fatalf("mount a tmpfs: %v", err)
	}
	defer syscall.Unmount(small, syscall.MNT_DETACH)
	dir := filepath.Join(small, "data")
	os.Mkdir(dir, 0o755)
	big := make([]byte, 6<<20)
	rand.Read(big)
	os.WriteFile(filepath.Join(dir, "db.log"), big, 0o644)
	id := createID(t, "--data-dir", dir, "--quiesce", "none", "--copy", "*.log") // 6 MiB copy, 6 MiB live
	tiny := t.TempDir()
	if err := syscall.Mount("tmpfs", tiny, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	defer syscall.Unmount(tiny, syscall.MNT_DETACH)
	target := filepath.Join(tiny, "t")
	mustCode(t, exitError, "free space first", "restore", "--data-dir", dir, "--id", id, "--target", target)
	if _, err := os.Stat(target); err == nil {
		t.Fatal("a refused restore --target left its target")
	}
	// 16 MiB: live 6 + copy 6; a restore would copy 6 more.
	mustCode(t, exitError, "needs", "restore", "--data-dir", dir, "--id", id, "--quiesce", "none")
	if b, err := os.ReadFile(filepath.Join(dir, "db.log")); err != nil || len(b) != len(big) {
		t.Fatalf("the refused restore changed the data: %d bytes, %v", len(b), err)
	}
}
