package app

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/medsa/medsa/workspace"
)

// onEvent shows what the workspace reports (on the UI goroutine).
func (u *UI) onEvent(ev workspace.Event) {
	switch e := ev.(type) {
	case workspace.OpenProgress:
		if u.openBar != nil {
			u.openBar.SetValue(float64(e.Done) / float64(max(e.Total, 1)))
		}
	case workspace.Opened:
		u.hideOpenDialog()
		u.logf("opened %s in %d ms: %v %s", e.Doc.Path, e.Elapsed.Milliseconds(), e.Doc.Vol.Size, e.Doc.Vol.Modality)
		u.attach(e.Doc)
		u.addRecent(e.Doc.Path)
		if m := u.opt.MaskPath; m != "" {
			u.opt.MaskPath = ""
			u.OpenMask(m)
		} else {
			u.offerRecovery()
		}
	case workspace.OpenFailed:
		u.hideOpenDialog()
		if len(e.Series) > 0 {
			u.pickSeries(e.Path, e.Series)
			return
		}
		u.showError(fmt.Errorf("could not open %s: %w\n\nChoose a DICOM folder or file, a NIfTI (.nii/.nii.gz), NRRD (.nrrd/.nhdr), MetaImage (.mha/.mhd) or a PNG/JPEG/TIFF image", e.Path, e.Err))
	case workspace.OpenCancelled:
		u.hideOpenDialog()
		u.setMessage("opening %s cancelled", filepath.Base(e.Path))
	case workspace.MaskInstalled:
		r := e.Result
		what, ev := "mask", "mask"
		if e.Early {
			// The full view's answer while the zoom crop is encoded and
			// decoded; the final answer is a "mask" event of its own.
			what, ev = "first mask (full view; refining on a crop)", "mask_early"
		}
		u.logf("%s installed %.1f ms after the click: engine %.1f ms (encode %.0f, decode %.1f, post %.1f), %d candidates, best score %.3f",
			what, msf(e.Latency), msf(e.Engine), r.EncodeMS, r.DecodeMS, r.PostMS, len(r.Masks), r.Scores[r.Best])
		u.state.event(ev, map[string]any{"installed_ms": msf(e.Latency), "engine_ms": msf(e.Engine),
			"encode_ms": r.EncodeMS, "decode_ms": r.DecodeMS})
	case workspace.SegmentFailed:
		switch {
		case errors.Is(e.Err, workspace.ErrModelLoading):
			u.setMessage("the model is still loading; your prompt will be answered when it is ready")
		default:
			u.setMessage("%v", e.Err)
			u.logf("segment: %v", e.Err)
		}
	case workspace.PropagateProgress:
		if u.propBar != nil {
			u.propBar.SetValue(float64(e.Done))
		}
	case workspace.PropagateDone:
		if dlg := u.propDlg; dlg != nil {
			u.propDlg, u.propBar = nil, nil
			dlg.Hide()
		}
		switch {
		case e.Err != nil:
			u.showError(fmt.Errorf("propagation: %w", e.Err))
		case e.Slices == 0:
			u.setMessage("propagation found nothing beyond this slice")
		default:
			what := "propagated"
			if e.Cancelled {
				what = "cancelled; kept"
			}
			u.setMessage("%s %d slices, %d voxels in %.1f s (Ctrl+Z undoes)", what, e.Slices, e.Voxels, e.Elapsed.Seconds())
			u.state.event("propagated", e.Slices)
		}
	case workspace.Saved:
		if e.Err != nil {
			u.showError(fmt.Errorf("%w\n\nChoose another folder or name", e.Err))
			return
		}
		u.updateTitle()
		u.setMessage("saved %s (%d ms)", filepath.Base(e.Path), e.Elapsed.Milliseconds())
		u.logf("saved %s in %d ms", e.Path, e.Elapsed.Milliseconds())
		u.state.event("saved", e.Path)
	case workspace.Autosaved:
		if e.Err != nil {
			u.logf("autosave: %v", e.Err)
			return
		}
		u.state.event("autosaved", e.Path)
	case workspace.MaskLoaded:
		switch {
		case e.Err != nil && e.Recovered:
			u.showError(e.Err)
		case e.Err != nil:
			u.showError(fmt.Errorf("%w\n\nThe mask must have the image's size and geometry", e.Err))
		case e.Recovered:
			u.setMessage("recovered unsaved work")
			u.updateTitle()
		default:
			u.updateTitle()
			u.setMessage("opened mask %s", filepath.Base(e.Path))
			u.state.event("mask_opened", e.Path)
		}
	}
}

func msf(d interface{ Microseconds() int64 }) float64 { return float64(d.Microseconds()) / 1000 }
