package zookeeper

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// nodeName turns a state key into one znode name, so that every key is
// storable and two keys never share a node. Characters a znode name cannot
// hold — '/', control characters, the ranges ZooKeeper rejects (UTF-16
// surrogates, which is every character beyond U+FFFF, the private use area
// U+E000–U+F8FF, U+FFF0–U+FFFF) — and '%' itself are written as %XX per byte
// of their UTF-8 encoding; "." and ".." become "%2E" and "%2E%2E". Invalid
// UTF-8 is escaped byte by byte too.
func nodeName(key string) string {
	if key == "." || key == ".." {
		return strings.Repeat("%2E", len(key))
	}
	var b strings.Builder
	for i := 0; i < len(key); {
		r, w := utf8.DecodeRuneInString(key[i:])
		if r == utf8.RuneError && w <= 1 || !keepRune(r) {
			for _, c := range []byte(key[i : i+w]) {
				fmt.Fprintf(&b, "%%%02X", c)
			}
		} else {
			b.WriteString(key[i : i+w])
		}
		i += w
	}
	return b.String()
}

func keepRune(r rune) bool {
	switch {
	case r == '/' || r == '%':
		return false
	case r < 0x20, r >= 0x7f && r <= 0x9f:
		return false
	case r >= 0xd800 && r <= 0xf8ff: // surrogates and the private use area
		return false
	case r >= 0xfff0:
		return false
	}
	return true
}

// cleanPrefix checks keyPrefixPath: an absolute znode path, "/" for the root.
func cleanPrefix(p string) (string, error) {
	if p == "" {
		return "/", nil
	}
	if !strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("metadata keyPrefixPath %q: want an absolute path such as /outrig/state", p)
	}
	p = strings.TrimRight(p, "/")
	if p == "" {
		return "/", nil
	}
	for _, part := range strings.Split(p[1:], "/") {
		if part == "" || part == "." || part == ".." || nodeName(part) != part {
			return "", fmt.Errorf("metadata keyPrefixPath %q: element %q is not a valid znode name", p, part)
		}
	}
	return p, nil
}

// join returns the znode path of key under prefix. At the root, the key
// "zookeeper" (ZooKeeper's own node) is stored as "%7Aookeeper".
func join(prefix, key string) string {
	if prefix == "/" {
		if key == "zookeeper" {
			return "/%7Aookeeper"
		}
		return "/" + nodeName(key)
	}
	return prefix + "/" + nodeName(key)
}
