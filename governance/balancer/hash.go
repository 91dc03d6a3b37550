package balancer

import "slices"

// hashString is 64-bit FNV-1a followed by a finaliser, so that keys that
// differ in a few bits spread over the whole range. Stable across
// processes and versions: it decides where keys go on every sidecar.
func hashString(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return mix64(h)
}

// mix64 is the 64-bit finaliser of MurmurHash3.
func mix64(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

func sortRing(r []ringNode) {
	slices.SortFunc(r, func(a, b ringNode) int {
		switch {
		case a.hash < b.hash:
			return -1
		case a.hash > b.hash:
			return 1
		}
		return int(a.idx - b.idx)
	})
}
