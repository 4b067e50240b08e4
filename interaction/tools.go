package interaction

import (
	"fmt"
	"sync"
)

// Tool is what the left mouse button does on the slice.
type Tool int

const (
	ToolPrompt Tool = iota // click: point (left +, right/Shift −); drag: box
	ToolBox                // drag: box only
	ToolBrush              // paint the active label
	ToolEraser             // erase the active label
)

func (t Tool) String() string {
	switch t {
	case ToolPrompt:
		return "points"
	case ToolBox:
		return "box"
	case ToolBrush:
		return "brush"
	case ToolEraser:
		return "eraser"
	}
	return fmt.Sprintf("tool(%d)", int(t))
}

// Button is a mouse button.
type Button int

const (
	Left Button = iota
	Right
)

// Outcome tells the caller what a pointer event did.
type Outcome int

const (
	Nothing       Outcome = iota
	PromptChanged         // the prompts changed: ask the model for new candidates
	LabelsEdited          // brush/eraser changed the label map
	Dragging              // a box or stroke is in progress: redraw its rubber band
)

type gesture int

const (
	idle gesture = iota
	pressed
	boxing
	stroking
)

// Controller is the tool state machine between pointer events (in slice
// pixel coordinates) and the Session. The gesture methods belong to the UI
// goroutine; the tool and brush radius may be read from any (a renderer).
type Controller struct {
	S *Session

	mu     sync.Mutex
	tool   Tool
	radius float64 // brush radius in slice pixels

	// DragThreshold is how far (slice pixels) a press must move to become a
	// drag; the viewer sets it from its zoom so it is a few screen pixels.
	DragThreshold float64

	state    gesture
	key      SliceKey
	btn      Button
	negative bool
	u0, v0   float64
	u, v     float64
}

// NewController returns a controller on s with the prompt tool.
func NewController(s *Session) *Controller {
	return &Controller{S: s, radius: 3, DragThreshold: 2}
}

// Tool is what the left button does.
func (c *Controller) Tool() Tool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tool
}

// SetTool selects what the left button does.
func (c *Controller) SetTool(t Tool) {
	c.mu.Lock()
	c.tool = t
	c.mu.Unlock()
}

// Radius is the brush radius in slice pixels.
func (c *Controller) Radius() float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.radius
}

// SetRadius sets the brush radius in slice pixels.
func (c *Controller) SetRadius(r float64) {
	c.mu.Lock()
	c.radius = r
	c.mu.Unlock()
}

// Press starts a gesture on slice k at (u, v).
func (c *Controller) Press(k SliceKey, u, v float64, b Button, shift bool) Outcome {
	c.key, c.btn, c.u0, c.v0, c.u, c.v = k, b, u, v, u, v
	c.negative = b == Right || shift
	switch c.Tool() {
	case ToolBrush, ToolEraser:
		if b != Left {
			c.state = idle
			return Nothing
		}
		if err := c.S.BeginStroke(k); err != nil {
			c.state = idle
			return Nothing
		}
		c.state = stroking
		c.S.StrokeTo(u, v, u, v, c.Radius(), c.Tool() == ToolBrush)
		return LabelsEdited
	default:
		c.state = pressed
		return Nothing
	}
}

// Move continues a gesture.
func (c *Controller) Move(u, v float64) Outcome {
	pu, pv := c.u, c.v
	c.u, c.v = u, v
	switch c.state {
	case pressed:
		if c.btn == Left && !c.negative && (abs(u-c.u0) > c.DragThreshold || abs(v-c.v0) > c.DragThreshold) {
			c.state = boxing
			return Dragging
		}
	case boxing:
		return Dragging
	case stroking:
		c.S.StrokeTo(pu, pv, u, v, c.Radius(), c.Tool() == ToolBrush)
		return LabelsEdited
	}
	return Nothing
}

// Release ends the gesture at (u, v).
func (c *Controller) Release(u, v float64) (Outcome, error) {
	c.Move(u, v)
	st := c.state
	c.state = idle
	switch st {
	case pressed:
		if c.Tool() == ToolBox {
			return Nothing, nil
		}
		if err := c.S.AddPoint(c.key, c.u0, c.v0, !c.negative); err != nil {
			return Nothing, err
		}
		return PromptChanged, nil
	case boxing:
		if err := c.S.SetBox(c.key, c.u0, c.v0, u, v); err != nil {
			return Nothing, err
		}
		return PromptChanged, nil
	case stroking:
		c.S.EndStroke()
		return LabelsEdited, nil
	}
	return Nothing, nil
}

// Cancel abandons a gesture (e.g. the pointer left the view); a stroke keeps what it painted.
func (c *Controller) Cancel() {
	if c.state == stroking {
		c.S.EndStroke()
	}
	c.state = idle
}

// RubberBand returns the box being dragged, if any.
func (c *Controller) RubberBand() (Rect, bool) {
	if c.state != boxing {
		return Rect{}, false
	}
	return Rect{U0: min(c.u0, c.u), V0: min(c.v0, c.v), U1: max(c.u0, c.u), V1: max(c.v0, c.v)}, true
}

// Busy reports a gesture in progress.
func (c *Controller) Busy() bool { return c.state != idle }
