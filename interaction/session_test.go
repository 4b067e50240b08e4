package interaction

import (
	"math"
	"math/rand"
	"slices"
	"sync"
	"testing"

	"github.com/medsa/medsa/io/volume"
)

func testVol(nx, ny, nz int, sp [3]float64) *volume.Volume {
	a := volume.Identity()
	for d := 0; d < 3; d++ {
		a[d][d] = sp[d]
	}
	return &volume.Volume{Size: [3]int{nx, ny, nz}, Channels: 1, Data: make([]float32, nx*ny*nz), Affine: a, Modality: "CT", Window: [2]float64{40, 400}}
}

// disc returns a W*H mask of a disc.
func disc(w, h int, cu, cv, r float64) []uint8 {
	m := make([]uint8, w*h)
	for v := 0; v < h; v++ {
		for u := 0; u < w; u++ {
			if math.Hypot(float64(u)-cu, float64(v)-cv) <= r {
				m[u+w*v] = 1
			}
		}
	}
	return m
}

func count(m *volume.LabelMap, l uint16) int { return m.Count(l) }

// labelMap is a snapshot of s's label map (tests read it between edits).
func labelMap(s *Session) *volume.LabelMap { lm, _, _, _ := s.SnapshotLabels(); return lm }

func labelData(s *Session) []uint16 { return labelMap(s).Data }

func TestRLERoundTrip(t *testing.T) {
	cases := [][]uint16{nil, {0}, {1, 1, 1, 2, 2, 0, 0, 0, 0, 5}, make([]uint16, 1000)}
	for _, c := range cases {
		r := encodeRLE(c)
		got := make([]uint16, len(c))
		r.decode(got)
		if !slices.Equal(got, append([]uint16{}, c...)) && len(c) > 0 {
			t.Errorf("rle %v -> %v", c, got)
		}
	}
	if n := len(encodeRLE(make([]uint16, 1000))); n != 1 {
		t.Errorf("1000 zeros: %d runs, want 1", n)
	}
}

func TestPointsCandidatesAcceptUndoRedo(t *testing.T) {
	vol := testVol(32, 24, 5, [3]float64{0.5, 0.5, 2})
	s := NewSession(vol)
	var changes []Change
	s.Observe(func(c Change) { changes = append(changes, c) })
	k := SliceKey{volume.Axial, 2}
	if err := s.AddPoint(k, 10, 8, true); err != nil {
		t.Fatal(err)
	}
	if err := s.AddPoint(k, 40, 8, true); err == nil {
		t.Error("point outside the slice accepted")
	}
	if err := s.AddPoint(k, 20, 20, false); err != nil {
		t.Fatal(err)
	}
	p, gen := s.Prompts(k)
	if len(p.Points) != 2 || !p.Points[0].Positive || p.Points[1].Positive {
		t.Fatalf("prompts %+v", p)
	}
	// A stale answer is dropped, the current one installed.
	if s.SetCandidates(&Candidates{Key: k, Gen: gen - 1, W: 32, H: 24, Masks: [][]uint8{disc(32, 24, 10, 8, 3)}}) {
		t.Error("stale candidates installed")
	}
	c := &Candidates{Key: k, Gen: gen, W: 32, H: 24, Masks: [][]uint8{disc(32, 24, 10, 8, 2), disc(32, 24, 10, 8, 4)}, Scores: []float32{0.5, 0.9}, Best: 1}
	if !s.SetCandidates(c) {
		t.Fatal("candidates rejected")
	}
	_, m, sel, n, score := s.Preview()
	if sel != 1 || n != 2 || score != 0.9 || m == nil {
		t.Errorf("preview sel %d n %d score %v", sel, n, score)
	}
	if !s.CycleCandidate() {
		t.Error("tab did not cycle")
	}
	if _, _, sel, _, _ := s.Preview(); sel != 0 {
		t.Errorf("after tab sel %d", sel)
	}
	s.SetModelName("tiny")
	if err := s.Accept([2]float64{40, 400}); err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, x := range c.Masks[0] {
		want += int(x)
	}
	if got := count(labelMap(s), 1); got != want {
		t.Errorf("accepted %d voxels, want %d", got, want)
	}
	if s.LabelAt([3]int{10, 8, 2}) != 1 || s.LabelAt([3]int{10, 8, 1}) != 0 {
		t.Error("mask written on the wrong slice")
	}
	if got := s.VoxelCount(1); got != int64(want) {
		t.Errorf("count %d want %d", got, want)
	}
	ml, unit := s.Measure(1)
	if unit != "mL" || math.Abs(ml-float64(want)*0.5*0.5*2/1000) > 1e-12 {
		t.Errorf("measure %v %s", ml, unit)
	}
	if p, _ := s.Prompts(k); !p.Empty() {
		t.Error("prompts not cleared after accept")
	}
	recs := s.Records()
	if len(recs) != 1 || recs[0].Model != "tiny" || len(recs[0].Points) != 2 || recs[0].Window != [2]float64{40, 400} || recs[0].Voxels != want {
		t.Errorf("records %+v", recs)
	}
	// Undo the accept: labels gone, prompts back, record gone.
	if name := s.Undo(); name != "accept" {
		t.Errorf("undo %q", name)
	}
	if count(labelMap(s), 1) != 0 || s.VoxelCount(1) != 0 {
		t.Error("undo left labels")
	}
	if p, _ := s.Prompts(k); len(p.Points) != 2 {
		t.Errorf("undo did not restore prompts: %+v", p)
	}
	if len(s.Records()) != 0 {
		t.Error("undo kept the record")
	}
	// Undo the negative point, then redo twice.
	s.Undo()
	if p, _ := s.Prompts(k); len(p.Points) != 1 {
		t.Errorf("after 2 undos: %+v", p)
	}
	s.Redo()
	s.Redo()
	if count(labelMap(s), 1) != want || len(s.Records()) != 1 {
		t.Error("redo did not restore the mask")
	}
	if s.Redo() != "" {
		t.Error("redo past the end")
	}
	if len(changes) == 0 {
		t.Error("observers not called")
	}
}

func TestAcceptNeedsCandidate(t *testing.T) {
	s := NewSession(testVol(8, 8, 1, [3]float64{1, 1, 1}))
	if err := s.Accept([2]float64{}); err == nil {
		t.Error("accept without candidates")
	}
	k := SliceKey{volume.Axial, 0}
	s.AddPoint(k, 1, 1, true)
	_, g := s.Prompts(k)
	if s.SetCandidates(&Candidates{Key: k, Gen: g, W: 4, H: 4, Masks: [][]uint8{make([]uint8, 16)}}) {
		t.Error("wrong-size candidates installed")
	}
	s.SetCandidates(&Candidates{Key: k, Gen: g, W: 8, H: 8, Masks: [][]uint8{make([]uint8, 64)}})
	if err := s.Accept([2]float64{}); err == nil {
		t.Error("empty mask accepted")
	}
}

func TestBoxClampAndTooSmall(t *testing.T) {
	s := NewSession(testVol(16, 16, 1, [3]float64{1, 1, 1}))
	k := SliceKey{volume.Axial, 0}
	if err := s.SetBox(k, 20, 20, -5, 3); err != nil {
		t.Fatal(err)
	}
	p, _ := s.Prompts(k)
	if *p.Box != (Rect{0, 3, 15, 15}) {
		t.Errorf("box %+v", *p.Box)
	}
	if err := s.SetBox(k, 3, 3, 3.2, 9); err == nil {
		t.Error("degenerate box accepted")
	}
	if !s.ClearPrompts(k) || s.ClearPrompts(k) {
		t.Error("clear prompts")
	}
	s.Undo()
	if p, _ := s.Prompts(k); p.Box == nil {
		t.Error("undo of clear did not restore the box")
	}
}

func TestBrushEraserFillClear(t *testing.T) {
	vol := testVol(40, 40, 3, [3]float64{1, 1, 1})
	s := NewSession(vol)
	c := NewController(s)
	k := SliceKey{volume.Axial, 1}
	c.SetTool(ToolBrush)
	c.SetRadius(2)
	c.Press(k, 10, 10, Left, false)
	c.Move(20, 10)
	if out, _ := c.Release(30, 10); out != LabelsEdited {
		t.Errorf("release %v", out)
	}
	for u := 10; u <= 30; u++ {
		if s.LabelAt([3]int{u, 10, 1}) != 1 {
			t.Fatalf("stroke gap at u=%d", u)
		}
	}
	if s.LabelAt([3]int{20, 13, 1}) != 0 || s.LabelAt([3]int{20, 10, 0}) != 0 {
		t.Error("stroke too wide or on another slice")
	}
	painted := s.VoxelCount(1)
	if s.HistoryLen() != 1 {
		t.Errorf("one stroke should be one step, have %d", s.HistoryLen())
	}
	// Eraser in the middle.
	c.SetTool(ToolEraser)
	c.Press(k, 20, 10, Left, false)
	c.Release(20, 10)
	if s.LabelAt([3]int{20, 10, 1}) != 0 || s.VoxelCount(1) >= painted {
		t.Error("eraser did not erase")
	}
	s.Undo()
	if s.VoxelCount(1) != painted {
		t.Error("undo of eraser")
	}
	// A ring, then fill holes fills its inside only.
	s.ClearSlice(k)
	if s.VoxelCount(1) != 0 {
		t.Fatal("clear slice")
	}
	c.SetTool(ToolBrush)
	c.SetRadius(1)
	pts := [][2]float64{{10, 10}, {30, 10}, {30, 30}, {10, 30}, {10, 10}}
	c.Press(k, 10, 10, Left, false)
	for _, p := range pts[1:] {
		c.Move(p[0], p[1])
	}
	c.Release(10, 10)
	before := s.VoxelCount(1)
	n, err := s.FillHoles(k)
	if err != nil || n == 0 {
		t.Fatalf("fill %d %v", n, err)
	}
	if s.LabelAt([3]int{20, 20, 1}) != 1 || s.LabelAt([3]int{5, 5, 1}) != 0 {
		t.Error("fill holes filled the wrong region")
	}
	if s.VoxelCount(1) != before+int64(n) {
		t.Error("counts after fill")
	}
	if got := s.ClearLabel(1); got != int(before)+n {
		t.Errorf("clear label removed %d", got)
	}
	s.Undo()
	if s.VoxelCount(1) != before+int64(n) {
		t.Error("undo clear label")
	}
}

func TestControllerPointsAndBox(t *testing.T) {
	s := NewSession(testVol(64, 64, 1, [3]float64{1, 1, 1}))
	c := NewController(s)
	k := SliceKey{volume.Axial, 0}
	cases := []struct {
		name   string
		btn    Button
		shift  bool
		du, dv float64
		points int
		pos    bool
		box    bool
	}{
		{"left click", Left, false, 0, 0, 1, true, false},
		{"right click", Right, false, 0, 0, 2, false, false},
		{"shift click", Left, true, 0.5, 0, 3, false, false},
		{"drag", Left, false, 20, 15, 3, false, true},
	}
	for _, tc := range cases {
		c.Press(k, 10, 10, tc.btn, tc.shift)
		if tc.du != 0 {
			c.Move(10+tc.du/2, 10+tc.dv/2)
			if _, ok := c.RubberBand(); tc.box && !ok {
				t.Errorf("%s: no rubber band", tc.name)
			}
		}
		out, err := c.Release(10+tc.du, 10+tc.dv)
		if err != nil || out != PromptChanged {
			t.Fatalf("%s: %v %v", tc.name, out, err)
		}
		p, _ := s.Prompts(k)
		if len(p.Points) != tc.points {
			t.Fatalf("%s: %d points", tc.name, len(p.Points))
		}
		if !tc.box && p.Points[len(p.Points)-1].Positive != tc.pos {
			t.Errorf("%s: sign", tc.name)
		}
		if tc.box && (p.Box == nil || *p.Box != (Rect{10, 10, 30, 25})) {
			t.Errorf("%s: box %+v", tc.name, p.Box)
		}
	}
}

func TestPropagateAcceptSlices(t *testing.T) {
	vol := testVol(20, 20, 10, [3]float64{1, 1, 1})
	s := NewSession(vol)
	masks := map[int][]uint8{}
	for z := 2; z <= 6; z++ {
		masks[z] = disc(20, 20, 10, 10, 3)
	}
	n, err := s.AcceptSlices(volume.Axial, 4, 1, masks, [2]float64{40, 400})
	if err != nil || n != 5*count1(masks[2]) {
		t.Fatalf("%d %v", n, err)
	}
	if r := s.Records(); len(r) != 1 || r[0].ToSlice == nil {
		t.Errorf("records %+v", r)
	}
	s.Undo()
	if s.VoxelCount(1) != 0 {
		t.Error("undo propagate")
	}
	// Non-axial plane: sagittal writes along i.
	s.Redo()
	if _, err := s.AcceptSlices(volume.Sagittal, 3, 1, map[int][]uint8{3: disc(20, 10, 5, 5, 2)}, [2]float64{}); err != nil {
		t.Fatal(err)
	}
	if s.LabelAt([3]int{3, 5, 5}) != 1 {
		t.Error("sagittal mask not at i=3")
	}
}

func count1(m []uint8) int {
	n := 0
	for _, x := range m {
		n += int(x)
	}
	return n
}

func TestLabelTable(t *testing.T) {
	s := NewSession(testVol(4, 4, 1, [3]float64{0.5, 0.5, 1}))
	v := s.AddLabel("liver")
	if v != 2 || s.Active() != 2 {
		t.Fatalf("add label %d active %d", v, s.Active())
	}
	s.RenameLabel(2, "kidney")
	s.SetLabelColor(2, [3]uint8{1, 2, 3})
	s.SetLabelVisible(2, false)
	s.SetLabelOpacity(2, 7)
	l, ok := s.Label(2)
	if !ok || l.Name != "kidney" || l.Color != [3]uint8{1, 2, 3} || l.Visible || l.Opacity != 1 {
		t.Errorf("label %+v", l)
	}
	if err := s.SetActive(9); err == nil {
		t.Error("active unknown label")
	}
	if err := s.RenameLabel(9, "x"); err == nil {
		t.Error("rename unknown label")
	}
	// 2D area in mm².
	c := NewController(s)
	c.SetTool(ToolBrush)
	c.SetRadius(0.4)
	c.Press(SliceKey{volume.Axial, 0}, 1, 1, Left, false)
	c.Release(1, 1)
	a, unit := s.Measure(2)
	if unit != "mm²" || a != 0.25 {
		t.Errorf("area %v %s", a, unit)
	}
}

func TestLoadLabelMap(t *testing.T) {
	vol := testVol(6, 6, 2, [3]float64{1, 1, 1})
	s := NewSession(vol)
	lm := volume.NewLabelMap(vol)
	lm.Data[3] = 4
	lm.Data[40] = 2
	if err := s.LoadLabelMap(lm, []volume.Label{{Value: 2, Name: "two"}}); err != nil {
		t.Fatal(err)
	}
	labs := s.Labels()
	if len(labs) != 2 || labs[0].Name != "two" || labs[1].Value != 4 {
		t.Errorf("labels %+v", labs)
	}
	other := testVol(6, 6, 3, [3]float64{1, 1, 1})
	if err := s.LoadLabelMap(volume.NewLabelMap(other), nil); err == nil {
		t.Error("mask on another grid accepted")
	}
}

// TestHistoryMemoryBounded simulates a long session of brush strokes and checks
// that the history stays small per edit and under its limit.
func TestHistoryMemoryBounded(t *testing.T) {
	vol := testVol(256, 256, 64, [3]float64{1, 1, 1})
	s := NewSession(vol)
	s.SetHistoryLimit(1 << 20)
	c := NewController(s)
	c.SetTool(ToolBrush)
	c.SetRadius(4)
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 2000; i++ {
		k := SliceKey{volume.Axial, rng.Intn(64)}
		u, v := rng.Float64()*256, rng.Float64()*256
		c.Press(k, u, v, Left, false)
		c.Move(u+rng.Float64()*30, v+rng.Float64()*30)
		c.Release(u+rng.Float64()*30, v+rng.Float64()*30)
		if i == 0 && s.HistoryBytes() > 16<<10 {
			t.Fatalf("one stroke costs %d bytes of history", s.HistoryBytes())
		}
	}
	if b := s.HistoryBytes(); b > 1<<20 {
		t.Errorf("history %d bytes over its 1 MiB limit", b)
	}
	if s.HistoryLen() < 50 {
		t.Errorf("only %d steps kept", s.HistoryLen())
	}
	// Undo everything kept, then redo it: the label map must come back exactly.
	after := append([]uint16(nil), labelData(s)...)
	for s.Undo() != "" {
	}
	for s.Redo() != "" {
	}
	if !slices.Equal(after, labelData(s)) {
		t.Error("undo/redo round trip changed the label map")
	}
}

// TestConcurrentSnapshot: snapshots taken while another goroutine edits are
// consistent: the voxels of each snapshot are those of its generation.
func TestConcurrentSnapshot(t *testing.T) {
	s := NewSession(testVol(64, 64, 8, [3]float64{1, 1, 1}))
	var mu sync.Mutex
	want := map[uint64]int{0: 0} // generation -> voxels of label 1
	type snap struct {
		gen uint64
		n   int
	}
	var got []snap
	stop, started := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			lm, _, _, g := s.SnapshotLabels()
			got = append(got, snap{g, lm.Count(1)})
			if len(got) == 1 {
				close(started)
			}
			select {
			case <-stop:
				return
			default:
			}
		}
	}()
	<-started // the reader runs while the edits happen
	for i := 0; i < 50; i++ {
		k := SliceKey{volume.Axial, i % 8}
		if err := s.AddPoint(k, 32, 32, true); err != nil {
			t.Fatal(err)
		}
		_, g := s.Prompts(k)
		s.SetCandidates(&Candidates{Key: k, Gen: g, W: 64, H: 64, Masks: [][]uint8{disc(64, 64, 32, 32, float64(1+i%7))}})
		record := func() {
			mu.Lock()
			want[s.Generation()] = int(s.VoxelCount(1))
			mu.Unlock()
		}
		if err := s.Accept([2]float64{}); err != nil {
			t.Fatal(err)
		}
		record()
		if i%5 == 0 {
			s.Undo()
			record()
		}
	}
	close(stop)
	wg.Wait()
	t.Logf("%d snapshots during 50 accepts", len(got))
	for _, x := range got {
		if w, ok := want[x.gen]; !ok || w != x.n {
			t.Fatalf("snapshot of generation %d holds %d voxels, want %d (known %v)", x.gen, x.n, w, ok)
		}
	}
}

func BenchmarkBrushStroke(b *testing.B) {
	s := NewSession(testVol(512, 512, 300, [3]float64{0.7, 0.7, 1}))
	c := NewController(s)
	c.SetTool(ToolBrush)
	c.SetRadius(8)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k := SliceKey{volume.Axial, i % 300}
		c.Press(k, 100, 100, Left, false)
		c.Move(200, 150)
		c.Release(300, 200)
	}
}

func BenchmarkAcceptUndo(b *testing.B) {
	s := NewSession(testVol(512, 512, 4, [3]float64{0.7, 0.7, 1}))
	k := SliceKey{volume.Axial, 1}
	m := disc(512, 512, 256, 256, 100)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.AddPoint(k, 256, 256, true)
		_, g := s.Prompts(k)
		s.SetCandidates(&Candidates{Key: k, Gen: g, W: 512, H: 512, Masks: [][]uint8{m}})
		if err := s.Accept([2]float64{}); err != nil {
			b.Fatal(err)
		}
		s.Undo()
	}
}

// TestMaskFeed: a corrective prompt on the same slice carries the selected
// candidate's logits; undo, clearing or another slice start afresh.
func TestMaskFeed(t *testing.T) {
	s := NewSession(testVol(8, 8, 2, [3]float64{1, 1, 1}))
	k := SliceKey{volume.Axial, 0}
	answer := func() {
		_, gen := s.Prompts(k)
		c := &Candidates{Key: k, Gen: gen, W: 8, H: 8, Masks: [][]uint8{make([]uint8, 64), make([]uint8, 64)},
			Scores: []float32{0.9, 0.5}, Best: 0, LowRes: [][]float32{{1, 2}, {3, 4}}}
		if !s.SetCandidates(c) {
			t.Fatal("candidates refused")
		}
	}
	if err := s.AddPoint(k, 2, 2, true); err != nil {
		t.Fatal(err)
	}
	if s.MaskFeed(k) != nil {
		t.Error("a first click has something to refine from")
	}
	answer()
	if err := s.AddPoint(k, 5, 5, false); err != nil {
		t.Fatal(err)
	}
	if f := s.MaskFeed(k); len(f) != 2 || f[0] != 1 {
		t.Errorf("after a corrective click: feed %v, want the best candidate's logits", f)
	}
	answer()
	s.CycleCandidate()
	if err := s.SetBox(k, 1, 1, 6, 6); err != nil {
		t.Fatal(err)
	}
	if f := s.MaskFeed(k); len(f) != 2 || f[0] != 3 {
		t.Errorf("after Tab and a box: feed %v, want the selected candidate's logits", f)
	}
	if s.MaskFeed(SliceKey{volume.Axial, 1}) != nil {
		t.Error("another slice has a feed")
	}
	s.Undo()
	if s.MaskFeed(k) != nil {
		t.Error("undo kept the feed")
	}
	answer()
	if err := s.AddPoint(k, 3, 3, true); err != nil {
		t.Fatal(err)
	}
	s.ClearPrompts(k)
	if s.MaskFeed(k) != nil {
		t.Error("clearing the prompts kept the feed")
	}
}

// TestLabelTableEditsAreUnsaved: what the sidecar keeps of a label (its name,
// colour and the label itself) counts as an unsaved change; display-only
// settings (visibility, opacity, the active label) do not.
func TestLabelTableEditsAreUnsaved(t *testing.T) {
	cases := []struct {
		name    string
		edit    func(s *Session) error
		unsaved bool
	}{
		{"rename", func(s *Session) error { return s.RenameLabel(1, "liver") }, true},
		{"colour", func(s *Session) error { return s.SetLabelColor(1, [3]uint8{1, 2, 3}) }, true},
		{"add", func(s *Session) error { s.AddLabel(""); return nil }, true},
		{"rename to the same name", func(s *Session) error { return s.RenameLabel(1, volume.DefaultLabelName(1)) }, false},
		{"visibility", func(s *Session) error { return s.SetLabelVisible(1, false) }, false},
		{"opacity", func(s *Session) error { return s.SetLabelOpacity(1, 0.2) }, false},
		{"active", func(s *Session) error { return s.SetActive(1) }, false},
	}
	for _, tc := range cases {
		s := NewSession(testVol(4, 4, 2, [3]float64{1, 1, 1}))
		g0 := s.Generation()
		if err := tc.edit(s); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := s.Generation() != g0; got != tc.unsaved {
			t.Errorf("%s: generation changed = %v, want %v", tc.name, got, tc.unsaved)
		}
	}
}

// TestAcceptSlicesIntoGivenLabel: a propagation writes the label it was
// started for, even when another label became active while it ran.
func TestAcceptSlicesIntoGivenLabel(t *testing.T) {
	s := NewSession(testVol(20, 20, 6, [3]float64{1, 1, 1}))
	s.AddLabel("other") // label 2 is active now
	masks := map[int][]uint8{1: disc(20, 20, 10, 10, 3), 2: disc(20, 20, 10, 10, 3)}
	if _, err := s.AcceptSlices(volume.Axial, 0, 1, masks, [2]float64{}); err != nil {
		t.Fatal(err)
	}
	if s.VoxelCount(1) == 0 || s.VoxelCount(2) != 0 {
		t.Errorf("label 1: %d voxels, label 2: %d (want all in 1)", s.VoxelCount(1), s.VoxelCount(2))
	}
	if r := s.Records(); len(r) != 1 || r[0].Label != 1 {
		t.Errorf("records %+v", r)
	}
	if _, err := s.AcceptSlices(volume.Axial, 0, 9, masks, [2]float64{}); err == nil {
		t.Error("propagation into a label that does not exist accepted")
	}
}
