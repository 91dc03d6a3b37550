package zookeeper

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// zkRejects mirrors the server's check of a path element (Java's
// PathUtils.validatePath, on UTF-16 code units).
func zkRejects(name string) bool {
	if name == "" || name == "." || name == ".." || strings.Contains(name, "/") {
		return true
	}
	if !utf8.ValidString(name) {
		return true
	}
	for _, r := range name {
		switch {
		case r == 0, r > 0 && r <= 0x1f, r >= 0x7f && r <= 0x9f,
			r >= 0xd800 && r <= 0xf8ff, r >= 0xfff0 && r <= 0xffff,
			r > 0xffff: // a surrogate pair in UTF-16
			return true
		}
	}
	return false
}

func TestNodeName(t *testing.T) {
	for _, c := range []struct{ key, want string }{
		{"plain", "plain"},
		{"app||order-1", "app||order-1"},
		{"a/b", "a%2Fb"},
		{"100%", "100%25"},
		{".", "%2E"},
		{"..", "%2E%2E"},
		{"...", "..."},
		{"ключ", "ключ"},
		{"😀", "%F0%9F%98%80"},
		{"tab\tkey", "tab%09key"},
		{"\xff", "%FF"},
		{"\ue000", "%EE%80%80"},
	} {
		if got := nodeName(c.key); got != c.want {
			t.Errorf("nodeName(%q) = %q, want %q", c.key, got, c.want)
		}
	}
}

// Every key maps to a name the server accepts, and distinct keys to
// distinct names.
func TestNodeNameValidAndInjective(t *testing.T) {
	keys := []string{"", "a", "A", "a/b", "a%2Fb", "%", "%25", ".", "..", "%2E", "é", "e\u0301",
		"😀", "%F0%9F%98%80", "\x00", "\x7f", "\u0085", "\ufff0", "\uffff", "\xc3", "x\xc3\xa9"}
	for i := range 512 {
		keys = append(keys, string(rune(i)), string([]byte{byte(i), byte(i >> 1)}))
	}
	seen := map[string]string{}
	for _, k := range keys {
		if k == "" {
			continue
		}
		n := nodeName(k)
		if zkRejects(n) {
			t.Errorf("nodeName(%q) = %q, which ZooKeeper rejects", k, n)
		}
		if prev, ok := seen[n]; ok && prev != k {
			t.Errorf("keys %q and %q share node %q", prev, k, n)
		}
		seen[n] = k
	}
}

func TestJoinAndPrefix(t *testing.T) {
	if got := join("/", "zookeeper"); got != "/%7Aookeeper" {
		t.Errorf("join(/, zookeeper) = %q: must not be ZooKeeper's own node", got)
	}
	if got := join("/outrig/state", "a/b"); got != "/outrig/state/a%2Fb" {
		t.Errorf("join = %q", got)
	}
	for _, c := range []struct {
		in, want string
		bad      bool
	}{
		{"", "/", false}, {"/", "/", false}, {"/outrig/state/", "/outrig/state", false},
		{"outrig", "", true}, {"/a//b", "", true}, {"/a/../b", "", true}, {"/a/%x", "", true},
	} {
		got, err := cleanPrefix(c.in)
		if (err != nil) != c.bad || got != c.want {
			t.Errorf("cleanPrefix(%q) = %q, %v; want %q, error %v", c.in, got, err, c.want, c.bad)
		}
	}
}

func TestParseMetadata(t *testing.T) {
	s, err := parseMetadata(map[string]string{"servers": "a:1, b:2", "sessionTimeout": "5s", "keyPrefixPath": "/x", "juteMaxBuffer": "4194304"})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.servers) != 2 || s.servers[1] != "b:2" || s.sessionTimeout.Seconds() != 5 || s.prefix != "/x" || s.juteMaxBuffer != 4<<20 {
		t.Fatalf("settings %+v", s)
	}
	for _, md := range []map[string]string{
		{},
		{"servers": "a:1", "sessionTimeout": "soon"},
		{"servers": "a:1", "maxBufferSize": "-1"},
		{"servers": "a:1", "keyPrefixPath": "relative"},
	} {
		if _, err := parseMetadata(md); err == nil {
			t.Errorf("parseMetadata(%v): no error", md)
		}
	}
}
