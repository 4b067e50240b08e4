// Package ctxio stops a long read when its context is done: a reader that
// checks the context before every read, in bounded chunks, so cancelling the
// opening of a large image takes effect within one chunk (a few milliseconds
// of decompression) instead of at the end of the file.
package ctxio

import (
	"context"
	"errors"
	"io"
)

// Chunk bounds one read, so a caller asking for a whole volume at once still
// sees the context checked every Chunk bytes.
const Chunk = 1 << 20

type reader struct {
	ctx context.Context
	r   io.Reader
}

// NewReader returns r, checked against ctx before each read. A nil ctx, or
// one that can never be done, gives r itself.
func NewReader(ctx context.Context, r io.Reader) io.Reader {
	if ctx == nil || ctx.Done() == nil {
		return r
	}
	return &reader{ctx, r}
}

func (c *reader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	if len(p) > Chunk {
		p = p[:Chunk]
	}
	return c.r.Read(p)
}

// OrBackground is ctx, or context.Background() when ctx is nil.
func OrBackground(ctx context.Context) context.Context {
	if ctx == nil {
		return context.Background()
	}
	return ctx
}

// Stopped reports whether err says a context was cancelled or ran out of time
// (not that the data were bad).
func Stopped(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
