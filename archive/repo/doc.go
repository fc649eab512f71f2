// Package repo is the archive's repository format: the config (and its
// seal), key files and encryption, content-defined chunking, blobs
// (zstd, sealed when encrypted), packs and their trailers, the index,
// streams of chunks, snapshot objects and content records, and the
// archive's locks. It reads and writes these on a store.Store and
// checks every one it reads; it has no operations over snapshots.
//
// Package archive builds the operations on it (upload, download, check,
// forget, gc, object lock upkeep), as restic's archiver and checker sit
// on its repository. The format is specified in docs/archive.md
// ("Archive format").
package repo
