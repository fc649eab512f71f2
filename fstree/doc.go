// Package fstree makes the entries of a snapshot's tree from manifest
// entries: directories and symlinks, private copies of files, and the
// attributes (owner, then mode, then mtime) that go with them. Restore and
// download build trees with it; create finishes the directories of a
// captured tree with it.
//
// Everything goes through an open root directory (fsutil.Dir): no path
// string is ever resolved, no symlink followed. It does not decide what to
// build (the callers read manifests and choose), and it never touches a
// hard-linked file's attributes: those are shared with live data.
package fstree
