package interaction

// command is one undoable step: a label delta, a prompt change, or both
// (accepting a mask writes labels and clears the prompts that made it).
type command struct {
	name          string
	key           SliceKey
	delta         *labelDelta
	promptsBefore *Prompts
	promptsAfter  *Prompts
	record        *MaskRecord
}

func (c *command) bytes() int {
	n := 96
	if c.delta != nil {
		n += c.delta.bytes()
	}
	if c.promptsBefore != nil {
		n += 24 * (len(c.promptsBefore.Points) + len(c.promptsAfter.Points))
	}
	if c.record != nil {
		n += 160 + 24*len(c.record.Points)
	}
	return n
}

// history is a linear undo/redo list bounded in memory: a new step drops the
// redo tail; past the limit the oldest steps go.
type history struct {
	cmds       []*command
	pos        int // cmds[:pos] are done, cmds[pos:] can be redone
	bytes      int
	limitBytes int
}

func (h *history) push(c *command) {
	for _, x := range h.cmds[h.pos:] {
		h.bytes -= x.bytes()
	}
	h.cmds = append(h.cmds[:h.pos], c)
	h.pos = len(h.cmds)
	h.bytes += c.bytes()
	h.trim()
}

func (h *history) trim() {
	drop := 0
	for h.limitBytes > 0 && h.bytes > h.limitBytes && drop < h.pos-1 {
		h.bytes -= h.cmds[drop].bytes()
		drop++
	}
	if drop > 0 {
		h.cmds = append([]*command(nil), h.cmds[drop:]...)
		h.pos -= drop
	}
}
