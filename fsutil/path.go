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
	case !cleanRel(rel) && path.Clean(rel) != rel:
		return fmt.Errorf("path %q is not clean (want %q)", rel, path.Clean(rel))
	}
	return nil
}

// cleanRel reports whether the relative path rel has no empty, "." or
// ".." component: then path.Clean(rel) == rel, found without Clean's
// byte-by-byte rewrite (a manifest of a million entries checks a million
// paths).
func cleanRel(rel string) bool {
	start := 0
	for i := 0; i <= len(rel); i++ {
		if i < len(rel) && rel[i] != '/' {
			continue
		}
		switch rel[start:i] {
		case "", ".", "..":
			return false
		}
		start = i + 1
	}
	return true
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
