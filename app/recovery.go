package app

import (
	"fmt"

	"fyne.io/fyne/v2/dialog"
)

// offerRecovery asks, after an open, whether to recover the autosaved work on
// the same image (a crash or a kill left it).
func (u *UI) offerRecovery() {
	d := u.doc
	if d == nil || u.opt.NoRecovery {
		return
	}
	_, at, ok := u.ws.Recovery(d.Doc)
	if !ok {
		return
	}
	msg := fmt.Sprintf("medsa found unsaved work on this image from %s.\nRecover it?", at.Format("2006-01-02 15:04"))
	dialog.ShowConfirm("Recover unsaved work", msg, func(ok bool) {
		if !ok {
			u.ws.RemoveRecovery(d.Doc)
			return
		}
		u.ws.Recover(d.Doc)
	}, u.W)
}
