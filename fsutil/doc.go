// Package fsutil holds the syscall-level helpers the rest of hotsnap is built
// on: durable writes (fsync of files and directories, atomic replace), stat
// identities, advisory file locks, safe path joins and file cloning.
//
// It knows nothing about snapshots or manifests; it is not a general file
// library either: every helper exists because a higher package needs exactly
// that guarantee.
package fsutil
