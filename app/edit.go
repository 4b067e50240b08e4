package app

// Edit actions: accept, candidates, prompts, undo/redo, slice and label
// operations, propagation.

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/widget"

	"github.com/medsa/medsa/workspace"
)

// Accept writes the preview into the active label.
func (u *UI) Accept() {
	d := u.doc
	if d == nil {
		return
	}
	if err := u.ws.Accept(d.Doc); err != nil {
		u.setMessage("%v", err)
		return
	}
	u.setMessage("mask accepted")
	u.state.event("accepted", d.view.Key())
}

// Cycle selects the next candidate mask.
func (u *UI) Cycle() { u.withDoc(func(d *doc) { d.Sess.CycleCandidate() }) }

// ClearPrompts removes the prompts of the current slice.
func (u *UI) ClearPrompts() {
	u.withDoc(func(d *doc) {
		d.CancelSegment()
		d.Sess.ClearPrompts(d.view.Key())
	})
}

// Undo undoes the last step (prompt, mask or brush edit).
func (u *UI) Undo() {
	u.withDoc(func(d *doc) {
		name := d.Sess.Undo()
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
		name := d.Sess.Redo()
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
		u.segment(d, d.view.Key(), time.Time{})
	}
	u.state.event("history", name)
}

// FillHoles fills holes of the active label on the current slice.
func (u *UI) FillHoles() {
	u.withDoc(func(d *doc) {
		n, err := d.Sess.FillHoles(d.view.Key())
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
		n, err := d.Sess.ClearSlice(d.view.Key())
		if err != nil {
			u.showError(err)
			return
		}
		u.setMessage("cleared %d pixels", n)
	})
}

// ClearLabel removes the active label everywhere (after confirmation).
func (u *UI) ClearLabel() {
	u.withDoc(func(d *doc) {
		l, ok := d.Sess.Label(d.Sess.Active())
		if !ok {
			return
		}
		dialog.ShowConfirm("Clear label", fmt.Sprintf("Remove %q from every slice? (Ctrl+Z undoes it)", l.Name), func(ok bool) {
			if ok {
				n := d.Sess.ClearLabel(l.Value)
				u.setMessage("cleared %d voxels", n)
			}
		}, u.W)
	})
}

// Propagate asks how far to spread the active label's mask from the current
// slice (in slices each way), then propagates.
func (u *UI) Propagate() {
	d := u.doc
	if d == nil || d.Vol.Is2D() {
		u.PropagateRange(0)
		return
	}
	if d.Propagating() {
		u.setMessage("%v", workspace.ErrPropagating)
		return
	}
	n := d.Vol.NumSlices(d.view.Key().Plane)
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
// cancel, as one undo step. A preview on the slice is accepted first; while a
// propagation runs, another is refused.
func (u *UI) PropagateRange(r int) {
	d := u.doc
	if d == nil {
		return
	}
	k := d.view.Key()
	st, err := u.ws.Propagate(d.Doc, k, r)
	switch {
	case errors.Is(err, workspace.ErrPropagating):
		u.setMessage("%v", err)
		return
	case err != nil && d.Vol.Is2D():
		u.setMessage("%v", err)
		return
	case err != nil:
		u.showError(err)
		return
	}
	bar := widget.NewProgressBar()
	bar.Max = float64(max(st.Hi-st.Lo, 1))
	dlg := dialog.NewCustom("Propagating through the volume", "Cancel",
		container.NewVBox(widget.NewLabel(fmt.Sprintf("from %s slice %d", k.Plane, k.Index+1)), bar), u.W)
	u.propDlg, u.propBar = dlg, bar
	wd := d.Doc
	dlg.SetOnClosed(func() {
		if u.propDlg == dlg { // the Cancel button, not the hide at the end
			wd.CancelPropagate()
		}
	})
	dlg.Show()
}
