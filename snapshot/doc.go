// Package snapshot takes, lists, deletes, verifies and restores hot
// snapshots of one node's data dir: stop writes (a quiesce.Quiescer),
// capture a hard-link tree under the lock (package hardlink), resume,
// hash, seal a manifest (package manifest) and publish atomically into the
// backups dir.
// Every mutating call first takes the data dir's operation lock and runs
// Recover, so no leftover of a crashed command survives.
//
// It does not talk to archives or other nodes (packages archive and
// cluster do; a restore from the archive gets its tree through
// RestoreOptions.From), and it does not know how writes are stopped
// (package quiesce does).
package snapshot
