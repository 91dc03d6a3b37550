package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat;
// 100 on every Linux architecture Go supports.
const clockTicks = 100

// procCPU returns the user+system CPU seconds used so far by process pid
// ("self" for this process).
func procCPU(pid string) (float64, error) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, fmt.Errorf("read cpu of %s: %w", pid, err)
	}
	// The command name (field 2) may hold spaces; fields restart after ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%s/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%s/stat: %d fields", pid, len(f))
	}
	utime, err1 := strconv.ParseFloat(f[11], 64) // field 14
	stime, err2 := strconv.ParseFloat(f[12], 64) // field 15
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%s/stat: bad utime/stime %q %q", pid, f[11], f[12])
	}
	return (utime + stime) / clockTicks, nil
}

// waitIdle waits until process pid used at most one clock tick in each of
// three consecutive 50 ms intervals (it went idle), or max passed.
func waitIdle(pid string, max time.Duration) {
	deadline := time.Now().Add(max)
	prev, err := procCPU(pid)
	if err != nil {
		return
	}
	for calm := 0; calm < 3 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		cur, err := procCPU(pid)
		if err != nil {
			return
		}
		if cur-prev <= 1.5/clockTicks {
			calm++
		} else {
			calm = 0
		}
		prev = cur
	}
}

// procMem returns the resident set size now and its peak (VmRSS, VmHWM) in
// MiB.
func procMem(pid string) (rss, peak float64, err error) {
	f, err := os.Open("/proc/" + pid + "/status")
	if err != nil {
		return 0, 0, fmt.Errorf("read memory of %s: %w", pid, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/%s/status %s: %w", pid, k, err)
		}
		if k == "VmRSS" {
			rss = kb / 1024
		} else {
			peak = kb / 1024
		}
	}
	return rss, peak, sc.Err()
}

// loadAvg returns the 1, 5 and 15 minute load averages as uptime prints them.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], ", ")
}

// cpuModel returns lscpu's model name and CPU count.
func cpuModel() string {
	out, err := exec.Command("lscpu").Output()
	if err != nil {
		return "?"
	}
	var model, cpus string
	for _, line := range strings.Split(string(out), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "Model name":
			model = strings.TrimSpace(v)
		case "CPU(s)":
			cpus = strings.TrimSpace(v)
		}
	}
	return fmt.Sprintf("%s, %s vCPU", model, cpus)
}
