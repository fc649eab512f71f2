package fsutil

import (
	"fmt"
	"path"
	"strings"
)

// ValidRelPath reports why rel is not an acceptable relative, slash-separated,
// clean path inside a tree: empty, absolute, not clean, or climbing with "..".
func ValidRelPath(rel string) error {
	switch {
	case rel == "":
		return fmt.Errorf("empty path")
	case strings.HasPrefix(rel, "/"):
		return fmt.Errorf("absolute path %q", rel)
	case strings.ContainsRune(rel, 0):
		return fmt.Errorf("path %q contains a NUL byte", rel)
	case rel == "." || rel == "..":
		return fmt.Errorf("path %q names no entry", rel)
	case strings.HasPrefix(rel, "../") || strings.Contains(rel, "/../") || strings.HasSuffix(rel, "/.."):
		return fmt.Errorf("path %q climbs out with ..", rel)
	case path.Clean(rel) != rel:
		return fmt.Errorf("path %q is not clean (want %q)", rel, path.Clean(rel))
	}
	return nil
}

// Within reports whether p is root or lies lexically below it. Both must be clean absolute paths.
func Within(root, p string) bool {
	if p == root {
		return true
	}
	if root == "/" {
		return strings.HasPrefix(p, "/")
	}
	return strings.HasPrefix(p, root+"/")
}
