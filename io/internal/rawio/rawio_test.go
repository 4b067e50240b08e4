package rawio

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

func TestPattern(t *testing.T) {
	cases := []struct {
		f           string
		lo, hi, stp int
		want        string // joined, or "error"
	}{
		{"s%03d.raw", 1, 3, 1, "s001.raw s002.raw s003.raw"},
		{"I.%i", 5, 1, -2, "I.5 I.3 I.1"},
		{"100%%_%d", 0, 0, 1, "100%_0"},
		{"x%s", 0, 1, 1, "error"},
		{"x%d%d", 0, 1, 1, "error"},
		{"x%d", 0, 5, 0, "error"},
		{"x%d", 5, 0, 1, "error"},
		{"x%d", 0, 1 << 20, 1, "error"},
	}
	for _, c := range cases {
		got, err := Pattern(c.f, c.lo, c.hi, c.stp)
		s := strings.Join(got, " ")
		if err != nil {
			s = "error"
		}
		if s != c.want {
			t.Errorf("Pattern(%q, %d, %d, %d) = %q (%v), want %q", c.f, c.lo, c.hi, c.stp, s, err, c.want)
		}
	}
}

func TestRoundTripKinds(t *testing.T) {
	vals := []float32{0, 1, 2, 100, 127}
	for k := Int8; k <= Float64; k++ {
		for _, big := range []bool{false, true} {
			b := make([]byte, len(vals)*k.Size())
			Encode(b, vals, k, big)
			got, err := ReadBinary(bytes.NewReader(b), int64(len(vals)), k, big, 1)
			if err != nil || fmt.Sprint(got) != fmt.Sprint(vals) {
				t.Errorf("%s big=%v: %v %v", k.Name(), big, got, err)
			}
		}
	}
	if _, err := ReadBinary(bytes.NewReader([]byte{1, 2, 3}), 2, Int16, false, 2); !errors.Is(err, ErrShort) {
		t.Errorf("short: %v", err)
	}
}

func TestPieces(t *testing.T) {
	files := []string{"abc", "def", "gh"}
	open := func(i int) (io.Reader, bool, func(), error) { return strings.NewReader(files[i]), true, func() {}, nil }
	p := &Pieces{N: 2, Per: 3, Open: open}
	if b, err := io.ReadAll(p); err != nil || string(b) != "abcdef" {
		t.Errorf("%q %v", b, err)
	}
	p = &Pieces{N: 3, Per: 3, Open: open, Names: []string{"a", "b", "c.raw"}}
	if _, err := io.ReadAll(p); err == nil || !strings.Contains(err.Error(), "c.raw") {
		t.Errorf("short piece: %v", err)
	}
	files[0] = "abcX"
	p = &Pieces{N: 2, Per: 3, Open: open}
	if _, err := io.ReadAll(p); !errors.Is(err, ErrLong) {
		t.Errorf("long piece: %v", err)
	}
}

func TestChannels(t *testing.T) {
	d, c, note := Channels([]float32{1, 2, 3, 4, 5, 6, 7, 8}, 4, true)
	if c != 3 || fmt.Sprint(d) != "[1 2 3 5 6 7]" || note == "" {
		t.Errorf("rgba: %v %d %q", d, c, note)
	}
	d, c, _ = Channels([]float32{1, 2, 3, 4}, 2, false)
	if c != 1 || fmt.Sprint(d) != "[1 3]" {
		t.Errorf("2 components: %v %d", d, c)
	}
}
