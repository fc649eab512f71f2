// Package archive is the off-site copy of snapshots: a content-addressed,
// deduplicated repository of zstd-compressed chunks in packs, on any
// store.Store (a directory or S3). Upload reads a local snapshot (skipping
// every file whose content the archive already holds), download materialises
// one back into a backups dir, verifying every chunk and file, and check
// proves the repository's structure and, optionally, its data.
//
// The repository's format (config, keys, packs, index, streams, locks) is
// package archive/repo; this package holds the operations over it. It does
// not take snapshots or restore them; package snapshot does.
package archive
