package interaction

import "github.com/medsa/medsa/io/volume"

// run is one run of equal labels in a run-length encoding.
type run struct {
	N int32
	V uint16
}

// rle is a run-length encoding of a sequence of labels. Label maps are large,
// smooth areas, so an edit's box compresses to a few runs per row.
type rle []run

func encodeRLE(vals []uint16) rle {
	var out rle
	for i := 0; i < len(vals); {
		j := i + 1
		for j < len(vals) && vals[j] == vals[i] {
			j++
		}
		out = append(out, run{N: int32(j - i), V: vals[i]})
		i = j
	}
	return out
}

func (r rle) decode(dst []uint16) {
	p := 0
	for _, x := range r {
		for n := int32(0); n < x.N && p < len(dst); n++ {
			dst[p] = x.V
			p++
		}
	}
}

func (r rle) bytes() int { return len(r) * 8 }

// Box is an inclusive-exclusive voxel box [Lo, Hi).
type Box3 struct{ Lo, Hi [3]int }

func (b Box3) empty() bool {
	return b.Hi[0] <= b.Lo[0] || b.Hi[1] <= b.Lo[1] || b.Hi[2] <= b.Lo[2]
}

func (b Box3) count() int {
	if b.empty() {
		return 0
	}
	return (b.Hi[0] - b.Lo[0]) * (b.Hi[1] - b.Lo[1]) * (b.Hi[2] - b.Lo[2])
}

// emptyBox is the identity for grow.
func emptyBox() Box3 {
	const big = 1 << 30
	return Box3{Lo: [3]int{big, big, big}, Hi: [3]int{-big, -big, -big}}
}

func (b *Box3) grow(p [3]int) {
	for d := 0; d < 3; d++ {
		if p[d] < b.Lo[d] {
			b.Lo[d] = p[d]
		}
		if p[d]+1 > b.Hi[d] {
			b.Hi[d] = p[d] + 1
		}
	}
}

// readBox copies the labels inside b in i-fastest order.
func readBox(m *volume.LabelMap, b Box3) []uint16 {
	out := make([]uint16, 0, b.count())
	for k := b.Lo[2]; k < b.Hi[2]; k++ {
		for j := b.Lo[1]; j < b.Hi[1]; j++ {
			off := m.Index(b.Lo[0], j, k)
			out = append(out, m.Data[off:off+b.Hi[0]-b.Lo[0]]...)
		}
	}
	return out
}

// labelDelta is an undoable change of the label map: the changed box and its
// old and new contents, run-length encoded. Memory is proportional to the edit.
type labelDelta struct {
	box      Box3
	old, new rle
}

// bytes is the memory the delta holds (for the history's accounting).
func (d *labelDelta) bytes() int { return d.old.bytes() + d.new.bytes() + 64 }

// apply writes either the new (redo) or the old (undo) contents and keeps
// the per-label counts in step.
func (d *labelDelta) apply(m *volume.LabelMap, counts map[uint16]int64, redo bool) {
	src, dst := d.old, d.new
	if !redo {
		src, dst = d.new, d.old
	}
	n := d.box.count()
	before := make([]uint16, n)
	after := make([]uint16, n)
	src.decode(before)
	dst.decode(after)
	p := 0
	b := d.box
	for k := b.Lo[2]; k < b.Hi[2]; k++ {
		for j := b.Lo[1]; j < b.Hi[1]; j++ {
			off := m.Index(b.Lo[0], j, k)
			for i := b.Lo[0]; i < b.Hi[0]; i++ {
				if before[p] != after[p] {
					counts[before[p]]--
					counts[after[p]]++
				}
				m.Data[off] = after[p]
				off++
				p++
			}
		}
	}
}

// editRecorder collects the old value of every voxel an edit touches, then
// turns the edit into a labelDelta over the touched box.
type editRecorder struct {
	m      *volume.LabelMap
	counts map[uint16]int64
	old    map[int]uint16 // flat offset -> value before the edit (sparse mode)
	box    Box3
	// Box mode: the box is known up front and its old contents were read once,
	// which is cheaper than a map for large edits (accept, propagate, clear).
	boxed  bool
	oldBox []uint16
}

// newRecorder records a sparse edit whose extent grows as it goes (brush strokes).
func newRecorder(m *volume.LabelMap, counts map[uint16]int64) *editRecorder {
	return &editRecorder{m: m, counts: counts, old: map[int]uint16{}, box: emptyBox()}
}

// newBoxRecorder records an edit confined to box b (set outside b is ignored).
func newBoxRecorder(m *volume.LabelMap, counts map[uint16]int64, b Box3) *editRecorder {
	r := &editRecorder{m: m, counts: counts, box: b, boxed: true}
	if !b.empty() {
		r.oldBox = readBox(m, b)
	}
	return r
}

func (b Box3) contains(p [3]int) bool {
	return p[0] >= b.Lo[0] && p[1] >= b.Lo[1] && p[2] >= b.Lo[2] && p[0] < b.Hi[0] && p[1] < b.Hi[1] && p[2] < b.Hi[2]
}

// set changes voxel (i, j, k) to l, remembering its first old value.
func (r *editRecorder) set(p [3]int, l uint16) {
	off := r.m.Index(p[0], p[1], p[2])
	cur := r.m.Data[off]
	if cur == l {
		return
	}
	if r.boxed {
		if !r.box.contains(p) {
			return
		}
	} else if _, seen := r.old[off]; !seen {
		r.old[off] = cur
		r.box.grow(p)
	}
	r.counts[cur]--
	r.counts[l]++
	r.m.Data[off] = l
}

// delta returns the recorded change, or nil when nothing changed for good.
func (r *editRecorder) delta() *labelDelta {
	if r.boxed {
		if r.box.empty() {
			return nil
		}
		newVals := readBox(r.m, r.box)
		same := true
		for i := range newVals {
			if newVals[i] != r.oldBox[i] {
				same = false
				break
			}
		}
		if same {
			return nil
		}
		return &labelDelta{box: r.box, old: encodeRLE(r.oldBox), new: encodeRLE(newVals)}
	}
	if len(r.old) == 0 {
		return nil
	}
	newVals := readBox(r.m, r.box)
	oldVals := make([]uint16, len(newVals))
	copy(oldVals, newVals)
	changed := false
	p := 0
	b := r.box
	for k := b.Lo[2]; k < b.Hi[2]; k++ {
		for j := b.Lo[1]; j < b.Hi[1]; j++ {
			off := r.m.Index(b.Lo[0], j, k)
			for i := b.Lo[0]; i < b.Hi[0]; i++ {
				if v, ok := r.old[off]; ok {
					oldVals[p] = v
					if v != newVals[p] {
						changed = true
					}
				}
				off++
				p++
			}
		}
	}
	if !changed {
		return nil
	}
	return &labelDelta{box: r.box, old: encodeRLE(oldVals), new: encodeRLE(newVals)}
}
