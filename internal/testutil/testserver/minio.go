// Package testserver starts real servers for tests, on loopback, from the
// binaries `make test-deps` caches in ~/.cache/hotsnap/bin. A test that
// needs a server it cannot find fails in CI (CI or HOTSNAP_REQUIRE_SERVERS
// set) and skips, saying why, elsewhere.
package testserver

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/minio/madmin-go/v3"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// MinIO credentials used by the tests' servers.
const (
	MinIOUser     = "hotsnap-test"
	MinIOPassword = "hotsnap-test-secret"
)

// Binary finds a cached server binary (HOTSNAP_<NAME>_BIN overrides).
func Binary(t testing.TB, name, env string) string {
	t.Helper()
	if p := os.Getenv(env); p != "" {
		return p
	}
	home, _ := os.UserHomeDir()
	cache := os.Getenv("HOTSNAP_CACHE")
	if cache == "" {
		cache = filepath.Join(home, ".cache", "hotsnap")
	}
	p := filepath.Join(cache, "bin", name)
	if _, err := os.Stat(p); err != nil {
		msg := fmt.Sprintf("%s not found at %s (run `make test-deps`, or set %s)", name, p, env)
		if os.Getenv("CI") != "" || os.Getenv("HOTSNAP_REQUIRE_SERVERS") != "" {
			t.Fatal(msg)
		}
		t.Skip("HOTSNAP: " + msg)
	}
	return p
}

// MinIO is a running MinIO server.
type MinIO struct {
	Endpoint string // 127.0.0.1:port
	bin, dir string
	cmd      *exec.Cmd
	t        testing.TB
}

// StartMinIO starts a MinIO server on a free loopback port with its own temp
// dir; it is stopped (by pid) when the test ends.
func StartMinIO(t testing.TB) *MinIO {
	t.Helper()
	m := &MinIO{bin: Binary(t, "minio", "HOTSNAP_MINIO_BIN"), dir: t.TempDir(), t: t}
	m.Endpoint = fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	m.Start()
	t.Cleanup(m.Stop)
	return m
}

// Start (re)starts the server on the same port and data dir.
func (m *MinIO) Start() {
	m.t.Helper()
	console := fmt.Sprintf("127.0.0.1:%d", FreePort(m.t))
	cmd := exec.Command(m.bin, "server", "--quiet", "--address", m.Endpoint, "--console-address", console, m.dir)
	cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+MinIOUser, "MINIO_ROOT_PASSWORD="+MinIOPassword,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off")
	logf, _ := os.Create(filepath.Join(m.t.TempDir(), "minio.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		m.t.Fatalf("start minio: %v", err)
	}
	m.cmd = cmd
	// Ready means an S3 call works: the health endpoint can answer before
	// the object layer is up ("Server not initialized yet").
	client, err := minio.New(m.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(MinIOUser, MinIOPassword, "")})
	if err != nil {
		m.t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := client.ListBuckets(ctx)
		cancel()
		if err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	m.Stop()
	log, _ := os.ReadFile(logf.Name())
	m.t.Fatalf("minio did not become ready on %s:\n%s", m.Endpoint, log)
}

// Pause stops the server with SIGSTOP: it accepts connections (the
// kernel does) and answers nothing, as a stalled endpoint or a black-holed
// network does. Resume undoes it.
func (m *MinIO) Pause() { syscall.Kill(-m.cmd.Process.Pid, syscall.SIGSTOP) }

// Resume continues a paused server.
func (m *MinIO) Resume() { syscall.Kill(-m.cmd.Process.Pid, syscall.SIGCONT) }

// Stop kills the server by pid and waits for it.
func (m *MinIO) Stop() {
	if m.cmd == nil || m.cmd.Process == nil {
		return
	}
	syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
	m.cmd.Wait()
	m.cmd = nil
}

// FreePort returns a loopback port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// AddUser makes a MinIO user with its own canned policy (policy JSON, as
// an operator would paste it), through MinIO's admin API.
func (m *MinIO) AddUser(t testing.TB, user, secret string, policy []byte) {
	t.Helper()
	adm, err := madmin.New(m.Endpoint, MinIOUser, MinIOPassword, false)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := adm.AddCannedPolicy(ctx, "policy-"+user, policy); err != nil {
		t.Fatalf("add policy for %s: %v", user, err)
	}
	if err := adm.AddUser(ctx, user, secret); err != nil {
		t.Fatalf("add user %s: %v", user, err)
	}
	if _, err := adm.AttachPolicy(ctx, madmin.PolicyAssociationReq{Policies: []string{"policy-" + user}, User: user}); err != nil {
		t.Fatalf("attach policy to %s: %v", user, err)
	}
}
