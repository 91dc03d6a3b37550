package mongodb

import (
	"hash/maphash"
	"sync"
)

// keyLocks serialises writes per key within this process: 256 mutexes,
// chosen by a hash of the key (two keys may share one; that only costs
// waiting). The zero value is ready; a nil *keyLocks locks nothing.
type keyLocks struct {
	seed maphash.Seed
	once sync.Once
	mu   [256]sync.Mutex
}

// lock locks key's mutex and returns its unlock.
func (l *keyLocks) lock(key string) func() {
	if l == nil {
		return func() {}
	}
	l.once.Do(func() { l.seed = maphash.MakeSeed() })
	m := &l.mu[maphash.String(l.seed, key)%uint64(len(l.mu))]
	m.Lock()
	return m.Unlock
}
