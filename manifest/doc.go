// Package manifest is the sealed record of one node's snapshot: its types,
// canonical encoding and BLAKE3 seal, the strict reader that refuses hostile
// or impossible manifests, the verifier that compares a tree with its
// manifest, and the compatibility rules a restore checks.
//
// It does not take snapshots or touch a data dir; package snapshot does.
package manifest
