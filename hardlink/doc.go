// Package hardlink builds a snapshot's tree from a live directory, fast
// enough to run under an application's write lock: hard-link regular files
// (or copy or reflink the ones the caller names), recreate directories and
// symlinks (never following them), skip sockets, fifos and devices, and
// record each captured entry's stat. Directories are left 0700 (so they can
// be filled); the caller gives them their modes afterwards. Work runs in parallel per directory and
// per batch of entries, so the time scales with the number of entries, never
// with their bytes (copies excepted, which is why they should be few).
//
// It does not hash, write manifests or take locks; package snapshot does.
package hardlink
