package volume

import (
	"strings"
	"testing"
)

func TestParseBytes(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"123", 123, true}, {"512MiB", 512 << 20, true}, {"2GB", 2e9, true}, {"1.5GiB", 3 << 29, true},
		{"800k", 800 << 10, true}, {" 4 g ", 4 << 30, true}, {"", 0, false}, {"-1", 0, false}, {"lots", 0, false},
	} {
		got, err := ParseBytes(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d, ok=%v", c.in, got, err, c.want, c.ok)
		}
	}
}

func TestCheckMemory(t *testing.T) {
	defer SetMemoryLimit(1<<30, "test")()
	if err := CheckMemory("x", 1<<29); err != nil {
		t.Fatal(err)
	}
	err := CheckMemory("scan.dcm: 1048576 frames", 7e9)
	if err == nil || !strings.Contains(err.Error(), "needs 7.0 GB") || !strings.Contains(err.Error(), "limit is 1.1 GB") {
		t.Fatalf("got %v", err)
	}
	if lim, _ := MemoryLimit(); lim != 1<<30 {
		t.Fatalf("limit %d", lim)
	}
}
