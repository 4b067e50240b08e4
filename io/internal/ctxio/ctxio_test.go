package ctxio

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
)

func TestReaderStopsWithinAChunk(t *testing.T) {
	src := bytes.NewReader(make([]byte, 10*Chunk))
	ctx, cancel := context.WithCancel(context.Background())
	r := NewReader(ctx, src)
	buf := make([]byte, 4*Chunk)
	n, err := r.Read(buf)
	if err != nil || n != Chunk {
		t.Fatalf("first read: %d, %v; want one chunk (%d) and no error", n, err, Chunk)
	}
	cancel()
	n, err = io.ReadFull(r, buf)
	if !errors.Is(err, context.Canceled) || n != 0 {
		t.Fatalf("after cancel: %d bytes, %v; want 0 and context.Canceled", n, err)
	}
	if left := src.Len(); left != 9*Chunk {
		t.Fatalf("the source was read on after the cancel: %d bytes left, want %d", left, 9*Chunk)
	}
}

func TestReaderWithoutDoneIsTheSource(t *testing.T) {
	src := bytes.NewReader([]byte("abc"))
	for _, ctx := range []context.Context{nil, context.Background()} {
		if r := NewReader(ctx, src); r != io.Reader(src) {
			t.Fatalf("NewReader(%v) wrapped a reader that can never be cancelled", ctx)
		}
	}
}
