package repo

// Bounds on what a remote serves. Every object is read with one of these
// as its largest acceptable size, and every count and length inside one is
// checked against what the object can hold before anything is allocated
// for it: a crafted object gets a clear error, never a panic or a memory
// bill of its choosing (docs/DESIGN.md, "Hostile remotes").
const (
	maxConfigObject   = 64 << 10  // config: a few hundred bytes
	maxLockObject     = 64 << 10  // locks/<id>: a few hundred bytes
	maxSnapshotObject = 16 << 20  // snapshots/<id>/<node>.manifest: stream descriptors (a chunk id per MiB of manifest)
	maxIndexObject    = 32 << 20  // index/<id>, as stored
	maxIndexPlain     = 32 << 20  // index/<id>, decompressed
	MaxIndexBlobs     = 256 << 10 // blobs per index object written: 11 MiB decompressed
	maxStreamSize     = 64 << 30  // a manifest or content stream
	maxRecordChunks   = 1 << 22   // chunks of one file (4 TiB at the smallest chunk size)
)

// MaxBlob is the largest stored blob: a chunk of the maximum size that did
// not compress, its encoding byte, and a seal's nonce and tag.
func (r *Repo) MaxBlob() int { return r.cfg.Chunker.Max + 1 + r.enc.overhead() }

// MaxPack is the largest pack an upload can write: the target size plus
// the blob that crossed it, and a full trailer.
func (r *Repo) MaxPack() int64 {
	return int64(r.cfg.PackSize) + int64(r.MaxBlob()) + int64(maxPackBlobs)*TrailerEntry + int64(r.enc.overhead()) + int64(TrailerTailLen)
}
