package volume

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
)

// MemoryLimitEnv overrides the memory budget readers check before allocating, in bytes
// or with a unit: "512MiB", "2GB", "8GiB".
const MemoryLimitEnv = "MEDSA_MEMORY_LIMIT"

var (
	limitOnce sync.Once
	limitVal  int64
	limitWhy  string
)

// MemoryLimit is the most a single image may take in memory: MEDSA_MEMORY_LIMIT when set,
// otherwise half of the machine's physical memory (the viewer, the model and a second image
// need the rest), or 4 GiB when the machine does not say.
func MemoryLimit() (bytes int64, source string) {
	limitOnce.Do(func() {
		if s := os.Getenv(MemoryLimitEnv); s != "" {
			if n, err := ParseBytes(s); err == nil && n > 0 {
				limitVal, limitWhy = n, MemoryLimitEnv+"="+s
				return
			}
		}
		if total := physicalMemory(); total > 0 {
			limitVal, limitWhy = total/2, "half of this machine's memory; set "+MemoryLimitEnv+" to change"
			return
		}
		limitVal, limitWhy = 4<<30, "default; set "+MemoryLimitEnv+" to change"
	})
	return limitVal, limitWhy
}

// CheckMemory returns a clear error when something needs more bytes than the budget allows.
// Readers call it with everything a load will hold at its peak, before allocating any of it.
func CheckMemory(what string, need int64) error {
	limit, why := MemoryLimit()
	if need > limit || need < 0 {
		return fmt.Errorf("%s needs %s of memory; the limit is %s (%s)", what, FormatBytes(need), FormatBytes(limit), why)
	}
	return nil
}

// FormatBytes writes a size the way a user reads it: "7.0 GB", "655 MB", "12 KB".
func FormatBytes(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.1f GB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.0f MB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.0f KB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d bytes", n)
}

// ParseBytes reads "123", "512MiB", "2GB", "1.5GiB", "800k".
func ParseBytes(s string) (int64, error) {
	t := strings.TrimSpace(strings.ToLower(s))
	mult := 1.0
	for _, u := range []struct {
		suf string
		m   float64
	}{{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
		{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12},
		{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"t", 1 << 40}, {"b", 1}} {
		if strings.HasSuffix(t, u.suf) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suf)), u.m
			break
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f < 0 || f*mult > 1<<62 {
		return 0, fmt.Errorf("%q is not a size in bytes", s)
	}
	return int64(f * mult), nil
}

// physicalMemory reads MemTotal from /proc/meminfo (0 when unknown).
func physicalMemory() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err == nil {
				return kb << 10
			}
		}
	}
	return 0
}

// SetMemoryLimit replaces the budget (tests, and a preference in the app); it returns a
// function that restores the previous one.
func SetMemoryLimit(bytes int64, source string) (restore func()) {
	MemoryLimit() // settle the default first so restore brings it back
	prevV, prevW := limitVal, limitWhy
	limitVal, limitWhy = bytes, source
	return func() { limitVal, limitWhy = prevV, prevW }
}
