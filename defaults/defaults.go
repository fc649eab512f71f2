// Package defaults holds every tunable's default in one place: what a zero
// option means in the library and what a flag starts at in the CLI. It
// imports only the standard library.
package defaults

import (
	"runtime"
	"time"
)

// NodeID is a single-node snapshot's node id when none is given.
const NodeID = "local"

// Stopping writes (quiesce.Policy, cluster.CreateOptions, the
// create/restore/cluster create flags).
const (
	// MaxWaitForLock is the total time spent trying to stop writes, as the
	// reference design's --max-wait-for-lock.
	MaxWaitForLock = 120 * time.Second
	// LockPeriod is the first attempt's period; each failed attempt grows
	// it by 10 %. Short: a quiet application locks at once, a busy one soon
	// grows it.
	LockPeriod = 100 * time.Millisecond
)

// The cluster.
const (
	// LockLease is how long a node keeps writes stopped, or a prepared
	// create, without hearing from its coordinator.
	LockLease = 5 * time.Second
	// MinLockLease and MaxLockLease bound what a coordinator may ask for;
	// an agent may lower the maximum (--max-lock-lease).
	MinLockLease = 300 * time.Millisecond
	MaxLockLease = 60 * time.Second
	// MemberTTL is the lease of an agent's registration in etcd: a dead
	// agent drops out after it (a restarted agent of the same host takes
	// its predecessor's registration over at once). etcd's client renews
	// it every third of it in a goroutine of its own, so a renewal may be
	// 10 s late (a loaded machine, a GC pause, a slow etcd) before the
	// agent drops out. Kubernetes' node leases are 40 s for the same reason.
	MemberTTL = 15 * time.Second
	// AgencyTTL is the lease of a coordinator's hold on the agency lock
	// (one cluster backup at a time): a dead coordinator's hold ends after
	// it, and at once if it ran on this host. Renewed every third of it.
	AgencyTTL = 15 * time.Second
	// EtcdDialTimeout bounds connecting to etcd.
	EtcdDialTimeout = 5 * time.Second
	// JobPoll is how often a coordinator polls its agents' jobs.
	JobPoll = 250 * time.Millisecond
)

// An agent's server (cluster.ServerLimits): what one client may hold.
const (
	AgentReadHeaderTimeout = 10 * time.Second // a TLS handshake and a request's headers
	AgentReadTimeout       = 30 * time.Second // a whole request (bodies are at most 1 MiB)
	AgentWriteTimeout      = 15 * time.Minute // a whole exchange: a lock waits at most 10 minutes
	AgentIdleTimeout       = 2 * time.Minute  // a kept-alive connection between requests
	AgentMaxConns          = 8192             // connections served at once
	AgentMaxHeaderBytes    = 64 << 10
	AgentMaxJobsPerClient  = 4 // running jobs of one caller
)

// The archive.
const (
	// ArchiveLockTTL is how long an archive lock lives unless refreshed;
	// holders refresh it every third of it, so only a dead holder's lock
	// expires.
	ArchiveLockTTL = 10 * time.Minute
	// DownloadWorkers is how many files a download finishes at once.
	DownloadWorkers = 4
	// IOTimeout bounds a remote call's wait for its next byte (a
	// response's headers, a body's next read or write): a stalled
	// endpoint fails a call after it, and the call is retried once more
	// before the command fails (store.Retry).
	IOTimeout = 30 * time.Second
	// ConnectTimeout bounds a connection's dial and its TLS handshake.
	ConnectTimeout = 10 * time.Second
	// ReleaseTimeout bounds what a command does on its way out against a
	// remote (releasing its archive lock): a dead endpoint costs at most
	// this; the lock left behind is stale at once for commands of this
	// host and expires for others.
	ReleaseTimeout = 5 * time.Second
	// ShutdownTimeout bounds an agent's server shutdown: requests in
	// flight get this long to finish.
	ShutdownTimeout = 5 * time.Second
	// AbortWait bounds how long an agent's job abort waits for the job to
	// stop before it answers.
	AbortWait = 10 * time.Second
	// HookTimeout bounds each of an agent's stop and start commands.
	HookTimeout = 5 * time.Minute
	// PolicyEvery is an agent's interval between runs of its own policy.
	PolicyEvery = time.Hour
	// RemoteAttempts and RemoteBackoff are the one retry policy of every
	// remote call (store.Retry): 5 tries, pauses from 200 ms doubling
	// (3 s in all); a call that stalled twice is not tried again.
	RemoteAttempts = 5
	RemoteBackoff  = 200 * time.Millisecond
)

// cpus is the number of CPUs this process may use: GOMAXPROCS as the
// runtime set it at start (cgroup limits included), read before the CLI
// raises it (Procs).
var cpus = runtime.GOMAXPROCS(0)

// Workers is the bound on parallel work (hashing, linking, verifying) when
// a caller passes 0: twice the CPUs, since the work waits on the disk as
// much as on the CPU. An upload uses half of it (its pipeline has stages
// of its own).
func Workers() int { return 2 * cpus }

// Readers is the number of files a pass that only reads them (a first
// create's hash) reads at once when a caller passes 0: Workers, and at
// least 16, whatever the CPU count. Such a pass waits on the device, not
// the CPU, and a device that serves many reads at once (an SSD, a
// virtual disk) needs them in flight. A first create on a 2-core
// machine, cold: 200,000 files of 1 KiB 6.8 to 7.5 s with 4 readers, 6.3
// to 6.9 s with 16 (on a direct-I/O loop device 9.9 and 10.1 s, 9.0 and
// 9.3 s); the 2 GiB mixed set 1.24 and 1.31 s, 1.15 and 1.17 s
// (docs/benchmarks.md, stop 38).
func Readers() int { return max(Workers(), 16) }

// Procs is the GOMAXPROCS the CLI runs with (unless GOMAXPROCS is set in
// the environment): twice the CPUs. The commands wait on the disk in many
// short system calls (a cold read of a 1 KiB file, a lookup), and a
// goroutine blocked in one keeps its processor until the runtime's monitor
// takes it back; with one processor a CPU, the other readers and the
// linker then wait, runnable, beside an idle CPU (docs/benchmarks.md,
// Processors for the waits).
func Procs() int { return 2 * cpus }
