package fsutil

import (
	"fmt"
	"path"
	"path/filepath"
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

// Join joins a validated relative slash path onto root. It refuses any rel
// that ValidRelPath refuses, so the result is always inside root lexically.
func Join(root, rel string) (string, error) {
	if err := ValidRelPath(rel); err != nil {
		return "", err
	}
	return filepath.Join(root, filepath.FromSlash(rel)), nil
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

// SymlinkEscapes reports whether a symlink at rel (relative to the tree root)
// with the given target points outside the tree when resolved lexically.
// Absolute targets always escape.
func SymlinkEscapes(rel, target string) bool {
	if target == "" || strings.HasPrefix(target, "/") {
		return true
	}
	// Walk the target's components from the link's directory, tracking depth
	// below the root; going below zero means leaving the tree.
	depth := 0
	if dir := path.Dir(rel); dir != "." {
		depth = strings.Count(dir, "/") + 1
	}
	for _, part := range strings.Split(target, "/") {
		switch part {
		case "", ".":
		case "..":
			depth--
			if depth < 0 {
				return true
			}
		default:
			depth++
		}
	}
	return false
}
