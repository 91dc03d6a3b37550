package adaptive

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outrig/outrig/governance/clock"
)

// ProcStat reads the machine's CPU usage from /proc/stat. It samples lazily:
// the first Usage call after the interval has passed re-reads the file (one
// caller, under a TryLock; the others keep the cached value), so it starts no
// goroutine. Usage between two samples is the busy share of the jiffies
// elapsed between them.
type ProcStat struct {
	path     string
	interval int64
	clk      clock.Clock

	usage atomic.Uint64 // float64 bits
	next  atomic.Int64

	mu          sync.Mutex
	busy, total uint64
}

// NewProcStat returns a sampler of path (normally "/proc/stat") that
// refreshes at most once per interval (default 250ms).
func NewProcStat(path string, interval time.Duration, clk clock.Clock) (*ProcStat, error) {
	if interval <= 0 {
		interval = 250 * time.Millisecond
	}
	if clk == nil {
		clk = clock.Real{}
	}
	p := &ProcStat{path: path, interval: int64(interval), clk: clk}
	busy, total, err := readProcStat(path)
	if err != nil {
		return nil, err
	}
	p.busy, p.total = busy, total
	p.next.Store(clk.Now() + p.interval)
	return p, nil
}

// Usage returns the CPU usage in [0, 1] measured over the last interval.
func (p *ProcStat) Usage(now int64) float64 {
	if now >= p.next.Load() && p.mu.TryLock() {
		p.refresh(now)
		p.mu.Unlock()
	}
	return math.Float64frombits(p.usage.Load())
}

func (p *ProcStat) refresh(now int64) {
	if now < p.next.Load() {
		return
	}
	p.next.Store(now + p.interval)
	busy, total, err := readProcStat(p.path)
	if err != nil || total <= p.total {
		return // keep the last value
	}
	u := float64(busy-min(busy, p.busy)) / float64(total-p.total)
	p.busy, p.total = busy, total
	p.usage.Store(math.Float64bits(math.Max(0, math.Min(1, u))))
}

// readProcStat returns the busy and total jiffies of the aggregate "cpu" line.
func readProcStat(path string) (busy, total uint64, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, fmt.Errorf("cpu usage: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := bytes.Fields(sc.Bytes())
		if len(f) < 5 || string(f[0]) != "cpu" {
			continue
		}
		var idle uint64
		for i, v := range f[1:] {
			n, err := strconv.ParseUint(string(v), 10, 64)
			if err != nil {
				return 0, 0, fmt.Errorf("cpu usage: %s: field %d: %w", path, i+1, err)
			}
			if i >= 8 { // guest and guest_nice are already counted in user and nice
				break
			}
			total += n
			if i == 3 || i == 4 { // idle, iowait
				idle += n
			}
		}
		return total - idle, total, nil
	}
	return 0, 0, fmt.Errorf("cpu usage: %s has no aggregate cpu line", path)
}
