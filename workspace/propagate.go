package workspace

import (
	"context"
	"errors"
	"fmt"

	"github.com/medsa/medsa/interaction"
	"github.com/medsa/medsa/model"
)

// ErrPropagating refuses a propagation while one runs.
var ErrPropagating = errors.New("a propagation is already running: wait for it or cancel it")

type propJob struct {
	cancel context.CancelFunc
	label  uint16
}

// CancelPropagate cancels the propagation in progress (what it did so far is kept).
func (d *Doc) CancelPropagate() {
	d.mu.Lock()
	p := d.prop
	d.mu.Unlock()
	if p != nil {
		p.cancel()
	}
}

// Propagate spreads the active label's mask on slice k up to r slices each
// way (r <= 0: the whole volume) in the background, as one undo step into
// that label, whichever label is active when it ends. A preview on k is
// accepted first. It refuses (ErrPropagating) while a propagation runs.
// Progress comes as PropagateProgress, the end as PropagateDone.
func (w *Workspace) Propagate(d *Doc, k interaction.SliceKey, r int) (PropagateStarted, error) {
	if d.Vol.Is2D() {
		return PropagateStarted{}, errors.New("propagation needs a 3D volume")
	}
	if d.Propagating() {
		return PropagateStarted{}, ErrPropagating
	}
	e, err := w.Engine()
	if e == nil {
		return PropagateStarted{}, fmt.Errorf("propagation needs the model: %w", err)
	}
	win := d.Active().Window()
	if pk, m, _, _, _ := d.Sess.Preview(); m != nil && pk == k {
		if err := d.Sess.Accept(win); err != nil {
			return PropagateStarted{}, err
		}
	}
	label := d.Sess.Active()
	labs, err := d.Sess.SliceLabels(k)
	if err != nil {
		return PropagateStarted{}, err
	}
	seed := make([]uint8, len(labs))
	found := false
	for i, l := range labs {
		if l == label {
			seed[i] = 1
			found = true
		}
	}
	if !found {
		return PropagateStarted{}, errors.New("nothing to propagate: segment the structure on this slice first (click, then Enter)")
	}
	n := d.Vol.NumSlices(k.Plane)
	lo, hi := 0, n-1
	if r > 0 {
		lo, hi = max(0, k.Index-r), min(n-1, k.Index+r)
	}
	ctx, cancel := context.WithCancel(context.Background())
	job := &propJob{cancel: cancel, label: label}
	d.mu.Lock()
	if d.prop != nil { // checked above; a second caller raced in
		d.mu.Unlock()
		cancel()
		return PropagateStarted{}, ErrPropagating
	}
	d.prop = job
	d.mu.Unlock()
	st := PropagateStarted{Key: k, Label: label, Lo: lo, Hi: hi}
	ref := d.ref(k)
	t0 := timeNow()
	go func() {
		progress := func(done, total int) { w.post(func() { w.emit(PropagateProgress{Done: done, Total: total}) }) }
		out, perr := PropagateSlices(ctx, e, ref, seed, lo, hi, progress, nil)
		w.post(func() {
			done := PropagateDone{Cancelled: ctx.Err() != nil && perr == nil, Slices: len(out), Elapsed: timeNow().Sub(t0)}
			cancel() // release the context (after reading whether the user cancelled)
			d.mu.Lock()
			d.prop = nil
			d.mu.Unlock()
			if perr == nil && len(out) > 0 {
				done.Voxels, perr = d.Sess.AcceptSlices(k.Plane, k.Index, label, out, win)
			}
			done.Err = perr
			if perr == nil && len(out) > 0 {
				w.KickAutosave()
			}
			w.emit(done)
		})
	}()
	return st, nil
}

// PropagateSlices runs e's propagation from ref's slice up to hi, then down
// to lo (both inclusive), seeded with seed (W*H, 1 = inside): the loop the GUI
// and `medsa segment --propagate` share. progress (may be nil) counts slices
// over both directions; each (may be nil) reports every direction. A cancel
// of ctx ends it early without an error: what was done is returned.
func PropagateSlices(ctx context.Context, e Engine, ref model.SliceRef, seed []uint8, lo, hi int,
	progress func(done, total int), each func(to, slices int, st model.PropagateStats)) (map[int][]uint8, error) {
	out := map[int][]uint8{}
	total := max(hi-lo, 1)
	doneBefore := 0
	for _, to := range []int{hi, lo} {
		if to == ref.Index || ctx.Err() != nil {
			continue
		}
		var prog func(done, _ int)
		if progress != nil {
			prog = func(done, _ int) { progress(doneBefore+done, total) }
		}
		m, st, err := e.PropagateStats(ctx, ref, seed, to, prog)
		for i, x := range m {
			out[i] = x
		}
		doneBefore += len(m)
		if err != nil && ctx.Err() == nil {
			return out, fmt.Errorf("propagate towards slice %d: %w", to, err)
		}
		if each != nil {
			each(to, len(m), st)
		}
	}
	return out, nil
}
