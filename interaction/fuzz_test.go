package interaction

import (
	"slices"
	"testing"

	"github.com/medsa/medsa/io/volume"
)

// FuzzSessionOps drives a session with arbitrary operations and coordinates
// (outside the slice, negative, huge, NaN-free floats from bytes): it must never
// panic, the incremental label counts must match the label map, and undoing
// everything must restore the empty map.
func FuzzSessionOps(f *testing.F) {
	f.Add([]byte{0, 10, 10, 1, 20, 20, 2, 5, 5, 3, 1, 1, 4, 0, 0})
	f.Add([]byte{3, 200, 3, 7, 9, 250, 6, 1, 1, 5, 2, 2, 8, 0, 0, 9, 0, 0})
	f.Add([]byte{1, 255, 255, 2, 0, 0, 0, 128, 128, 7, 0, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		vol := testVol(17, 13, 5, [3]float64{0.5, 1, 2.5})
		s := NewSession(vol)
		c := NewController(s)
		planes := []volume.Plane{volume.Axial, volume.Coronal, volume.Sagittal}
		for i := 0; i+2 < len(ops) && i < 300; i += 3 {
			op, a, b := ops[i], float64(ops[i+1])-20, float64(ops[i+2])-20
			p := planes[int(ops[i+1])%3]
			n := vol.NumSlices(p)
			k := SliceKey{p, int(ops[i+2])%(n+2) - 1} // sometimes out of range
			switch op % 12 {
			case 0:
				s.AddPoint(k, a, b, op&16 == 0)
			case 1:
				s.SetBox(k, a, b, a+b/3, b-a/2)
			case 2:
				if pr, g := s.Prompts(k); !pr.Empty() {
					w, h := s.SliceSize(p)
					m := make([]uint8, w*h)
					for j := range m {
						m[j] = uint8((j + int(a)) % 3 % 2)
					}
					s.SetCandidates(&Candidates{Key: k, Gen: g, W: w, H: h, Masks: [][]uint8{m, m}, Scores: []float32{0.1, 0.2}})
				}
			case 3:
				s.Accept([2]float64{a, b})
			case 4:
				c.SetTool(Tool(int(op/12) % 4))
				c.SetRadius(float64(ops[i+1]%9) - 1)
				c.Press(k, a, b, Button(op&1), op&32 != 0)
			case 5:
				c.Move(a, b)
			case 6:
				c.Release(a, b)
			case 7:
				s.Undo()
			case 8:
				s.Redo()
			case 9:
				s.FillHoles(k)
			case 10:
				s.ClearSlice(k)
			case 11:
				w, h := s.SliceSize(p)
				s.AcceptSlices(p, k.Index, s.Active(), map[int][]uint8{k.Index: make([]uint8, w*h), (k.Index + 1) % n: slices.Repeat([]uint8{1}, w*h)}, [2]float64{})
			}
		}
		c.Cancel()
		for l, n := range s.counts {
			if got := int64(labelMap(s).Count(l)); got != n {
				t.Fatalf("label %d: count %d, map has %d", l, n, got)
			}
		}
		for s.Undo() != "" {
		}
		if labelMap(s).MaxLabel() != 0 {
			t.Fatal("undoing everything left labels")
		}
	})
}
