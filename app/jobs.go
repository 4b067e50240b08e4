package app

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/widget"

	"github.com/medsa/medsa/interaction"
	"github.com/medsa/medsa/model"
)

// openEngine loads the model (in the background, at start).
func (u *UI) openEngine() {
	dir := u.opt.ModelDir
	if dir == "" {
		dir = findAsset("model")
	}
	var e *model.Engine
	var err error
	if dir == "" {
		err = errors.New("no model found: put a model directory (manifest.json + ONNX files) in assets/model next to medsa, or set MEDSA_MODEL")
	} else {
		// Leave one core to the UI on small machines: scrolling and painting
		// stay smooth while the encoder works ahead in the background.
		threads := max(1, runtime.NumCPU()-1)
		e, err = model.Open(dir, model.Options{Device: u.opt.Device, Threads: threads})
	}
	u.engMu.Lock()
	u.eng, u.engErr = e, err
	u.engMu.Unlock()
	fyne.Do(func() {
		u.updateBadge()
		if err != nil {
			u.logf("model: %v", err)
			u.setMessage("model unavailable: prompts are off (brush still works)")
			return
		}
		u.logf("model %s on %s", e.Manifest().ID(), e.Provider())
		if d := u.doc; d != nil {
			d.sess.ModelName = e.Manifest().ID()
			u.prefetch(d, 1)
			// A prompt given while the model loaded is answered now.
			u.segment(d, d.view.Key())
		}
	})
}

func (u *UI) updateBadge() {
	e, err := u.engine()
	switch {
	case e != nil:
		p := e.Provider()
		t := p.Name
		if p.FallbackReason != "" {
			t += " (fallback)"
		}
		u.badge.SetText(t + " · " + e.Manifest().Name)
	case err != nil:
		u.badge.SetText("no model")
	default:
		u.badge.SetText("model loading…")
	}
}

func (u *UI) showProvider() {
	e, err := u.engine()
	var txt string
	switch {
	case e != nil:
		p := e.Provider()
		cs := e.CacheStats()
		m := e.Manifest()
		txt = fmt.Sprintf("Model: %s\nArchitecture: %s\nInput: %d px, %s\n\nDevice: %s\nRequested: %s\nThreads: %d\nONNX Runtime: %s\n",
			m.ID(), m.Architecture, m.InputSize, m.Resize, p.Name, p.Requested, p.Threads, p.Library)
		if p.FallbackReason != "" {
			txt += "\nCUDA is not used: " + p.FallbackReason + "\n"
		}
		txt += fmt.Sprintf("\nEmbedding cache: %d slices, %.0f of %.0f MiB, %d hits, %d misses, %d evictions",
			cs.Entries, float64(cs.Bytes)/(1<<20), float64(cs.LimitBytes)/(1<<20), cs.Hits, cs.Misses, cs.Evictions)
	case err != nil:
		txt = err.Error()
	default:
		txt = "The model is loading."
	}
	l := widget.NewLabel(txt)
	l.Wrapping = fyne.TextWrapWord
	d := dialog.NewCustom("Model and device", "Close", container.NewVScroll(l), u.W)
	d.Resize(fyne.NewSize(640, 420))
	d.Show()
}

// ref names slice k of d as the engine sees it, under the current window.
func (u *UI) ref(d *doc, k interaction.SliceKey) model.SliceRef {
	r := model.SliceRef{Vol: d.vol, VolumeID: d.volID, Plane: k.Plane, Index: k.Index}
	if d.vol.Channels == 1 {
		r.Window = d.view.Window()
	}
	return r
}

// prefetch queues the visible slice and its neighbours in the scroll direction.
func (u *UI) prefetch(d *doc, dir int) {
	e, _ := u.engine()
	if e == nil || d == nil {
		return
	}
	e.PrefetchNeighbours(u.ref(d, d.view.Key()), dir, 4)
}

// prefetchSettled prefetches once scrolling pauses: slices flown past at 30
// frames a second are not worth encoding, and the encoder would take the CPU
// the scrolling needs. The engine is safe to call from the timer goroutine.
func (u *UI) prefetchSettled(d *doc, dir int) {
	e, _ := u.engine()
	if e == nil || d == nil {
		return
	}
	ref := u.ref(d, d.view.Key())
	if d.prefetchTimer != nil {
		d.prefetchTimer.Stop()
	}
	d.prefetchTimer = time.AfterFunc(150*time.Millisecond, func() { e.PrefetchNeighbours(ref, dir, 4) })
}

// segment asks the model for the prompts of slice k, in the background; the
// answer replaces the preview unless the prompts changed meanwhile.
func (u *UI) segment(d *doc, k interaction.SliceKey) {
	p, gen := d.sess.Prompts(k)
	if d.segCancel != nil {
		d.segCancel()
		d.segCancel = nil
	}
	if p.Empty() {
		return
	}
	e, err := u.engine()
	if e == nil {
		if err != nil {
			u.setMessage("no model: %v", err)
		} else {
			u.setMessage("the model is still loading; your prompt will be answered when it is ready")
		}
		return
	}
	mp := model.Prompt{}
	for _, pt := range p.Points {
		mp.Points = append(mp.Points, model.Point{U: pt.U, V: pt.V, Positive: pt.Positive})
	}
	if p.Box != nil {
		mp.Box = &model.Box{U0: p.Box.U0, V0: p.Box.V0, U1: p.Box.U1, V1: p.Box.V1}
	}
	if f := d.sess.MaskFeed(k); len(f) == e.Manifest().LowResMaskSize*e.Manifest().LowResMaskSize {
		mp.MaskIn = f
	}
	ctx, cancel := context.WithCancel(context.Background())
	d.segCancel = cancel
	ref := u.ref(d, k)
	t0 := d.clickAt
	if t0.IsZero() || time.Since(t0) > 5*time.Second {
		t0 = time.Now()
	}
	d.clickAt = time.Time{}
	d.view.MarkPending(t0)
	go func() {
		res, err := e.Segment(ctx, ref, mp)
		segDone := time.Since(t0)
		fyne.Do(func() {
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				u.setMessage("segmentation failed: %v", err)
				u.logf("segment: %v", err)
				return
			}
			c := &interaction.Candidates{Key: k, Gen: gen, W: res.W, H: res.H, Masks: res.Masks, Scores: res.Scores, Best: res.Best, LowRes: res.LowRes}
			if !d.sess.SetCandidates(c) {
				return
			}
			lat := time.Since(t0)
			d.lastResult = res
			u.logf("mask installed %.1f ms after the click: engine %.1f ms (encode %.0f, decode %.1f, post %.1f), %d candidates, best score %.3f",
				float64(lat.Microseconds())/1000, float64(segDone.Microseconds())/1000, res.EncodeMS, res.DecodeMS, res.PostMS,
				len(res.Masks), res.Scores[res.Best])
			u.state.event("mask", map[string]any{"installed_ms": float64(lat.Microseconds()) / 1000, "engine_ms": float64(segDone.Microseconds()) / 1000,
				"encode_ms": res.EncodeMS, "decode_ms": res.DecodeMS})
		})
	}()
}

// maskPainted shows the click->mask time once the mask is on screen.
func (u *UI) maskPainted(d *doc, lat time.Duration) {
	txt := fmt.Sprintf("click→mask %d ms", lat.Milliseconds())
	if r := d.lastResult; r != nil {
		if r.EncodeMS > 0 {
			txt += fmt.Sprintf(" (incl. encoding %.0f ms)", r.EncodeMS)
		} else {
			txt += fmt.Sprintf(" (decode %.0f ms)", r.DecodeMS+r.PostMS)
		}
	}
	u.latency.SetText(txt)
	u.logf("%s on screen", txt)
	u.state.event("painted", float64(lat.Microseconds())/1000)
}

func (u *UI) updateCandStatus() {
	d := u.doc
	if d == nil {
		return
	}
	_, mask, sel, n, score := d.sess.Preview()
	if mask == nil {
		u.candStatus.SetText("")
		return
	}
	u.candStatus.SetText(fmt.Sprintf("candidate %d/%d · score %.2f · Enter accepts, Tab cycles", sel+1, n, score))
}

// --- edit actions ---

// Accept writes the preview into the active label.
func (u *UI) Accept() {
	d := u.doc
	if d == nil {
		return
	}
	if err := d.sess.Accept(d.view.Window()); err != nil {
		u.setMessage("%v", err)
		return
	}
	u.setMessage("mask accepted")
	u.state.event("accepted", d.view.Key())
	u.kickAutosave()
}

// Cycle selects the next candidate mask.
func (u *UI) Cycle() { u.withDoc(func(d *doc) { d.sess.CycleCandidate() }) }

// ClearPrompts removes the prompts of the current slice.
func (u *UI) ClearPrompts() {
	u.withDoc(func(d *doc) {
		if d.segCancel != nil {
			d.segCancel()
		}
		d.sess.ClearPrompts(d.view.Key())
	})
}

// Undo undoes the last step (prompt, mask or brush edit).
func (u *UI) Undo() {
	u.withDoc(func(d *doc) {
		name := d.sess.Undo()
		if name == "" {
			u.setMessage("nothing to undo")
			return
		}
		u.setMessage("undid %s", name)
		u.afterHistory(d, name)
	})
}

// Redo redoes the next step.
func (u *UI) Redo() {
	u.withDoc(func(d *doc) {
		name := d.sess.Redo()
		if name == "" {
			u.setMessage("nothing to redo")
			return
		}
		u.setMessage("redid %s", name)
		u.afterHistory(d, name)
	})
}

// afterHistory re-asks the model when undo/redo changed the prompts on screen.
func (u *UI) afterHistory(d *doc, name string) {
	if name == "prompt" || name == "accept" {
		u.segment(d, d.view.Key())
	}
	u.state.event("history", name)
}

// FillHoles fills holes of the active label on the current slice.
func (u *UI) FillHoles() {
	u.withDoc(func(d *doc) {
		n, err := d.sess.FillHoles(d.view.Key())
		if err != nil {
			u.showError(err)
			return
		}
		u.setMessage("filled %d pixels", n)
	})
}

// ClearSlice removes the active label from the current slice.
func (u *UI) ClearSlice() {
	u.withDoc(func(d *doc) {
		n, _ := d.sess.ClearSlice(d.view.Key())
		u.setMessage("cleared %d pixels", n)
	})
}

// ClearLabel removes the active label everywhere (after confirmation).
func (u *UI) ClearLabel() {
	u.withDoc(func(d *doc) {
		l, _ := d.sess.Label(d.sess.Active())
		dialog.ShowConfirm("Clear label", fmt.Sprintf("Remove %q from every slice? (Ctrl+Z undoes it)", l.Name), func(ok bool) {
			if ok {
				n := d.sess.ClearLabel(l.Value)
				u.setMessage("cleared %d voxels", n)
			}
		}, u.W)
	})
}

// Propagate asks how far to spread the active label's mask from the current
// slice (in slices each way), then propagates.
func (u *UI) Propagate() {
	d := u.doc
	if d == nil || d.vol.Is2D() {
		u.PropagateRange(0)
		return
	}
	n := d.vol.NumSlices(d.view.Key().Plane)
	ent := widget.NewEntry()
	ent.SetText(strconv.Itoa(min(u.propRange, n)))
	form := []*widget.FormItem{widget.NewFormItem("slices each way", ent)}
	dialog.ShowForm("Propagate through the volume", "Propagate", "Cancel", form, func(ok bool) {
		if !ok {
			return
		}
		r, err := strconv.Atoi(strings.TrimSpace(ent.Text))
		if err != nil || r < 1 {
			u.showError(fmt.Errorf("slices each way: %q is not a positive number", ent.Text))
			return
		}
		u.propRange = r
		u.PropagateRange(r)
	}, u.W)
}

// PropagateRange spreads the active label's mask on the current slice up to r
// slices in both directions (r <= 0: the whole volume), with progress and
// cancel, as one undo step. A preview on the slice is accepted first.
func (u *UI) PropagateRange(r int) {
	d := u.doc
	if d == nil {
		return
	}
	if d.vol.Is2D() {
		u.setMessage("propagation needs a 3D volume")
		return
	}
	e, err := u.engine()
	if e == nil {
		u.showError(fmt.Errorf("propagation needs the model: %v", err))
		return
	}
	k := d.view.Key()
	if pk, m, _, _, _ := d.sess.Preview(); m != nil && pk == k {
		if err := d.sess.Accept(d.view.Window()); err != nil {
			u.showError(err)
			return
		}
	}
	axis := d.vol.Affine.PlaneAxis(k.Plane, d.vol.Size)
	act := d.sess.Active()
	d.sess.Lock()
	labs := d.sess.LabelMap().SliceLabels(axis, k.Index)
	d.sess.Unlock()
	seed := make([]uint8, len(labs))
	found := false
	for i, l := range labs {
		if l == act {
			seed[i] = 1
			found = true
		}
	}
	if !found {
		u.showError(errors.New("nothing to propagate: segment the structure on this slice first (click, then Enter)"))
		return
	}
	n := d.vol.NumSlices(k.Plane)
	lo, hi := 0, n-1
	if r > 0 {
		lo, hi = max(0, k.Index-r), min(n-1, k.Index+r)
	}
	bar := widget.NewProgressBar()
	bar.Max = float64(max(hi-lo, 1))
	ctx, cancel := context.WithCancel(context.Background())
	d.propCancel = cancel
	dlg := dialog.NewCustom("Propagating through the volume", "Cancel", container.NewVBox(widget.NewLabel(fmt.Sprintf("from %s slice %d", k.Plane, k.Index+1)), bar), u.W)
	dlg.SetOnClosed(cancel) // the Cancel button; hiding it when done cancels a finished context: harmless
	dlg.Show()
	ref := u.ref(d, k)
	win := d.view.Window()
	t0 := time.Now()
	go func() {
		out := map[int][]uint8{}
		doneBefore := 0
		progress := func(done, total int) {
			v := float64(doneBefore + done)
			fyne.Do(func() { bar.SetValue(v) })
		}
		var perr error
		for _, to := range []int{hi, lo} {
			if to == k.Index {
				continue
			}
			if ctx.Err() != nil {
				break
			}
			m, err := e.Propagate(ctx, ref, seed, to, progress)
			for i, x := range m {
				out[i] = x
			}
			doneBefore += len(m)
			if err != nil && ctx.Err() == nil {
				perr = err
				break
			}
		}
		fyne.Do(func() {
			cancelled := ctx.Err() != nil
			dlg.Hide()
			if perr != nil {
				u.showError(fmt.Errorf("propagation: %w", perr))
				return
			}
			if len(out) == 0 {
				u.setMessage("propagation found nothing beyond this slice")
				return
			}
			nv, err := d.sess.AcceptSlices(k.Plane, k.Index, out, win)
			if err != nil {
				u.showError(err)
				return
			}
			what := "propagated"
			if cancelled {
				what = "cancelled; kept"
			}
			u.setMessage("%s %d slices, %d voxels in %.1f s (Ctrl+Z undoes)", what, len(out), nv, time.Since(t0).Seconds())
			u.kickAutosave()
			u.state.event("propagated", len(out))
		})
	}()
}

func (u *UI) cancelJobs(d *doc) {
	if d.segCancel != nil {
		d.segCancel()
	}
	if d.propCancel != nil {
		d.propCancel()
	}
}

// statusLoop shows background-encoding progress.
func (u *UI) statusLoop() {
	t := time.NewTicker(300 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-u.quit:
			return
		case <-t.C:
		}
		e, _ := u.engine()
		if e == nil {
			continue
		}
		var d *doc
		var ref model.SliceRef
		fyne.DoAndWait(func() {
			if d = u.doc; d != nil {
				ref = u.ref(d, d.view.Key())
			}
		})
		if d == nil {
			continue
		}
		pending := e.Pending()
		ready := e.Ready(ref)
		var txt string
		busy := true
		switch {
		case !ready:
			txt = fmt.Sprintf("encoding slice… (%d queued)", pending)
		case pending > 0:
			txt = fmt.Sprintf("slice ready · encoding %d neighbours", pending)
		default:
			txt, busy = "slice ready", false
		}
		fyne.Do(func() {
			// Only touch widgets that change: every change repaints the window
			// (no animated bar either: with software GL, a repaint every frame
			// would take the UI thread from clicks).
			imp := widget.SuccessImportance
			if busy {
				imp = widget.WarningImportance
			}
			if u.encStatus.Text != txt || u.encStatus.Importance != imp {
				u.encStatus.Importance = imp
				u.encStatus.SetText(txt)
			}
		})
	}
}
