package volume

import (
	"math"
	"testing"
)

func TestAffineInverseRoundTrip(t *testing.T) {
	cases := []struct {
		name string
		a    Affine
	}{
		{"identity", Identity()},
		{"lps-ct", Affine{{-0.9, 0, 0, 120}, {0, -0.9, 0, 110}, {0, 0, 1.5, -80}, {0, 0, 0, 1}}},
		{"oblique", Affine{{0.8 * math.Cos(0.3), -0.8 * math.Sin(0.3), 0, 5}, {0.8 * math.Sin(0.3), 0.8 * math.Cos(0.3), 0.1, -7}, {0, -0.05, 2.5, 30}, {0, 0, 0, 1}}},
	}
	for _, c := range cases {
		inv, err := c.a.Inverse()
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		p := [3]float64{3, 17, 9}
		w := c.a.Apply(p)
		back := inv.Apply(w)
		for d := 0; d < 3; d++ {
			if math.Abs(back[d]-p[d]) > 1e-9 {
				t.Errorf("%s: round trip %v -> %v -> %v", c.name, p, w, back)
			}
		}
	}
}

func TestOrientationAndPlaneAxis(t *testing.T) {
	cases := []struct {
		name     string
		a        Affine
		orient   string
		axial    int
		coronal  int
		sagittal int
	}{
		{"ras", Identity(), "RAS", 2, 1, 0},
		{"lps", Affine{{-1, 0, 0, 0}, {0, -1, 0, 0}, {0, 0, 1, 0}, {0, 0, 0, 1}}, "LPS", 2, 1, 0},
		// ITK's KmeansTest T1 is stored LSA: i left, j superior, k anterior.
		{"lsa", Affine{{-1, 0, 0, 0}, {0, 0, 1, 0}, {0, 1, 0, 0}, {0, 0, 0, 1}}, "LSA", 1, 2, 0},
	}
	size := [3]int{4, 5, 6}
	for _, c := range cases {
		if got := c.a.Orientation(); got != c.orient {
			t.Errorf("%s: orientation %s, want %s", c.name, got, c.orient)
		}
		for p, want := range map[Plane]int{Axial: c.axial, Coronal: c.coronal, Sagittal: c.sagittal} {
			if got := c.a.PlaneAxis(p, size); got != want {
				t.Errorf("%s: %s axis %d, want %d", c.name, p, got, want)
			}
		}
	}
}

func TestSliceRoundTrip(t *testing.T) {
	v := &Volume{Size: [3]int{3, 4, 5}, Channels: 1, Affine: Identity()}
	v.Data = make([]float32, 60)
	for n := range v.Data {
		v.Data[n] = float32(n)
	}
	m := NewLabelMap(v)
	for _, p := range []Plane{Axial, Coronal, Sagittal} {
		s, err := v.Slice(p, 1)
		if err != nil {
			t.Fatal(err)
		}
		for y := 0; y < s.H; y++ {
			for x := 0; x < s.W; x++ {
				ijk := s.Voxel(x, y)
				if got, want := s.Data[x+s.W*y], v.At(ijk[0], ijk[1], ijk[2], 0); got != want {
					t.Fatalf("%s (%d,%d): %v want %v", p, x, y, got, want)
				}
			}
		}
		lab := make([]uint16, s.W*s.H)
		lab[len(lab)-1] = uint16(p) + 1
		m.SetSliceLabels(s.Axis, s.Index, lab)
		last := s.Voxel(s.W-1, s.H-1)
		if got := m.Data[m.Index(last[0], last[1], last[2])]; got != uint16(p)+1 {
			t.Errorf("%s: label at %v = %d", p, last, got)
		}
		if back := m.SliceLabels(s.Axis, s.Index); back[len(back)-1] != uint16(p)+1 {
			t.Errorf("%s: SliceLabels did not read back", p)
		}
	}
	if _, err := v.Slice(Axial, 5); err == nil {
		t.Error("slice outside the volume accepted")
	}
}

func TestCheckSize(t *testing.T) {
	if err := CheckSize([3]int{100000, 100000, 100000}, 1); err == nil {
		t.Error("huge size accepted")
	}
	if err := CheckSize([3]int{512, 512, 300}, 1); err != nil {
		t.Error(err)
	}
	if err := CheckSize([3]int{0, 1, 1}, 1); err == nil {
		t.Error("zero size accepted")
	}
}

func TestAutoWindow(t *testing.T) {
	ramp := make([]float32, 1000)
	for i := range ramp {
		ramp[i] = float32(i)
	}
	withNaN := append([]float32{float32(math.NaN()), float32(math.Inf(1))}, ramp...)
	cases := []struct {
		name     string
		data     []float32
		channels int
		lo, hi   [2]float64 // bounds of centre and width
	}{
		{"ramp", ramp, 1, [2]float64{490, 980}, [2]float64{510, 1000}},
		{"NaN and Inf ignored", withNaN, 1, [2]float64{490, 980}, [2]float64{510, 1000}},
		{"colour as stored", make([]float32, 30), 3, [2]float64{127.5, 255}, [2]float64{127.5, 255}},
	}
	for _, c := range cases {
		v := &Volume{Data: c.data, Channels: c.channels}
		w := v.AutoWindow()
		if w[0] < c.lo[0] || w[0] > c.hi[0] || w[1] < c.lo[1] || w[1] > c.hi[1] {
			t.Errorf("%s: window %v", c.name, w)
		}
	}
}
