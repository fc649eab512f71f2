package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hotsnap/hotsnap/internal/testutil/testserver"
	"github.com/hotsnap/hotsnap/internal/testutil/testtree"
)

// TestChaos runs rounds of real commands (create and upload, forget, gc)
// against a real MinIO behind a TCP fault proxy (connections reset after a
// random number of bytes either way, or stalled for 1 to 8 s), with faults
// injected into every remote call too (archive/store/faulty: errors,
// stalls, short reads, truncated writes, a seed per round) and kill -9 at
// random moments, then proves over a clean connection that the archive
// checks and that every snapshot whose upload exited 0 downloads and
// verifies. HOTSNAP_CHAOS_ROUNDS sets the rounds
// (scripts/chaos.sh runs 200); HOTSNAP_CHAOS_SEED the seed. Rounds that
// happen to acknowledge no upload (all killed or failed by the faults: on
// a loaded machine an upload takes longer than a kill's delay more
// often), or that happen to inject no fault, prove nothing, so uploads
// under the same faults, unkilled, are added until one is acknowledged
// and a fault was injected (at most maxExtra).
func TestChaos(t *testing.T) {
	rounds := 10
	if n, err := strconv.Atoi(os.Getenv("HOTSNAP_CHAOS_ROUNDS")); err == nil && n > 0 {
		rounds = n
	}
	seed := uint64(time.Now().UnixNano())
	if s, err := strconv.ParseUint(os.Getenv("HOTSNAP_CHAOS_SEED"), 10, 64); err == nil {
		seed = s
	}
	t.Logf("chaos seed %d (HOTSNAP_CHAOS_SEED to replay)", seed)
	rnd := rand.New(rand.NewPCG(seed, 1))
	m := testserver.StartMinIO(t)
	bin := buildTestBinary(t)
	dir := testtree.New(t)
	faults := filepath.Join(t.TempDir(), "faults.log")
	env := []string{"AWS_ACCESS_KEY_ID=" + testserver.MinIOUser, "AWS_SECRET_ACCESS_KEY=" + testserver.MinIOPassword, "HOTSNAP_FAULTS_LOG=" + faults}
	px := testserver.StartProxy(t, m.Endpoint, rnd.Uint64(), 0.15)
	remote := []string{"--remote", "s3://chaos/p", "--s3-endpoint", "http://" + px.Addr, "--io-timeout", "5s"}
	clean := []string{"--remote", "s3://chaos/p", "--s3-endpoint", "http://" + m.Endpoint}
	if code, out, _ := faultRun(t, bin, env, append([]string{"archive", "init"}, clean...)...); code != 0 {
		t.Fatalf("init: exit %d %s", code, out)
	}
	injected := func() int {
		b, _ := os.ReadFile(faults)
		return strings.Count(string(b), "fault\n") + int(px.Faults.Load())
	}
	const maxExtra = 30
	var acked []string
	killed, hung, panics, extra := 0, 0, 0, 0
	for r := 0; r < rounds || (len(acked) == 0 || injected() == 0) && r < rounds+maxExtra; r++ {
		more := r >= rounds // an added round: an upload, not killed
		if more {
			extra++
		}
		// Change the data a little each round, so uploads send something.
		os.WriteFile(filepath.Join(dir, "round"), []byte(strings.Repeat(strconv.Itoa(r), 1+rnd.IntN(200000))), 0o644)
		var args []string
		id := ""
		switch k := rnd.IntN(10); {
		case k < 7 || more:
			id = createID(t, "--data-dir", dir, "--quiesce", "none")
			args = []string{"upload", "--data-dir", dir, "--id", id}
		case k < 9:
			args = []string{"archive", "forget", "--keep-last", "1000"}
		default:
			args = []string{"archive", "gc"}
		}
		roundEnv := append(env, fmt.Sprintf("HOTSNAP_FAULTS=%d:0.05", rnd.Uint64()))
		cmd := exec.Command(bin, append(args, remote...)...)
		cmd.Env = append(os.Environ(), roundEnv...)
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		var killAt <-chan time.Time
		if rnd.IntN(3) == 0 && !more {
			killAt = time.After(time.Duration(rnd.IntN(400)) * time.Millisecond)
		}
		var err error
		wasKilled := false
	wait:
		for {
			select {
			case err = <-done:
				break wait
			case <-killAt:
				cmd.Process.Kill()
				wasKilled, killAt = true, nil
			case <-time.After(3 * time.Minute):
				hung++
				cmd.Process.Kill()
				err = <-done
				break wait
			}
		}
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
			if ws := ee.Sys().(syscall.WaitStatus); ws.Signaled() {
				code = -int(ws.Signal())
			}
		}
		switch {
		case code == exitInternal:
			panics++
			t.Errorf("round %d: %v panicked: %s", r, args, out.String())
		case wasKilled && code == -int(syscall.SIGKILL):
			killed++
		case code == 0 && id != "":
			acked = append(acked, id)
		}
	}
	// Over a clean connection: the archive checks, every acknowledged
	// snapshot downloads whole and verifies.
	env = env[:2]
	code, out, _ := faultRun(t, bin, env, append([]string{"archive", "check", "--read-data"}, clean...)...)
	if code != 0 {
		t.Errorf("archive check --read-data after the chaos: exit %d %s", code, out)
	}
	lost := 0
	for _, id := range acked {
		target := filepath.Join(t.TempDir(), "x")
		if code, out, _ := faultRun(t, bin, env, append([]string{"download", "--id", id, "--target", target}, clean...)...); code != 0 {
			lost++
			t.Errorf("acknowledged snapshot %s does not download: exit %d %s", id, code, out)
		}
	}
	nInjected := injected()
	t.Logf("chaos: rounds %d (%d added), faults injected %d, commands killed %d, uploads acknowledged %d, snapshots lost %d, hung %d, panics %d",
		rounds+extra, extra, nInjected, killed, len(acked), lost, hung, panics)
	if hung > 0 || lost > 0 || panics > 0 {
		t.Fatalf("chaos: %d lost, %d hung, %d panics", lost, hung, panics)
	}
	if nInjected == 0 || len(acked) == 0 {
		t.Fatalf("chaos: %d faults injected, %d uploads acknowledged: nothing was proven", nInjected, len(acked))
	}
}
