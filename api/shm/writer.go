package shm

import (
	"context"
)

// send writes one message as one or more frames (SPEC.md §5.3), waiting for
// space when the ring is full. ctx (nil = never cancelled) bounds only the
// waiting: if it ends before the first fragment is published nothing was
// sent and its error is returned; if it ends later, the rest of the message
// is replaced by a CANCEL frame written in the background and its error is
// returned (cancelOnAbort; otherwise the message is completed).
func (e *endpoint) send(ctx context.Context, h FrameHeader, payload []byte, cancelOnAbort bool) error {
	chunk := int(e.maxFrame) - FrameHeaderSize
	if err := e.lockW(ctx); err != nil {
		return err
	}
	if e.mem == nil {
		e.unlockW()
		return e.closedErr()
	}
	sent := false
	for off := 0; ; {
		n := min(chunk, len(payload)-off)
		fh := h
		if off+n == len(payload) {
			fh.Flags |= FlagEnd
		}
		if e.tx.tryPut(fh, payload[off:off+n]) {
			sent = true
			off += n
			if off == len(payload) {
				break
			}
			continue
		}
		if sent && e.tx.takeConsumerParked() {
			e.ring(doorbellData) // let the consumer free the space we wait for
		}
		wctx := ctx
		if sent && !cancelOnAbort {
			wctx = nil
		}
		if err := e.waitSpace(wctx, e.tx.footprint(uint32(FrameHeaderSize+n))); err != nil {
			if sent && wctx != nil && wctx.Err() != nil {
				// Hand our hold of the writer lock to a goroutine that ends the stream.
				go e.finishCancel(FrameHeader{Method: h.Method, Flags: FlagCancel | FlagEnd, Stream: h.Stream})
				return err
			}
			e.unlockW()
			return err
		}
	}
	e.unlockWAndWake()
	return nil
}

// unlockWAndWake releases the writer lock after a complete message and
// rings the consumer's doorbell if it parked.
func (e *endpoint) unlockWAndWake() {
	wake := e.tx.takeConsumerParked()
	e.unlockW()
	if wake {
		e.ring(doorbellData)
	}
}

// trySend writes a message that fits in one frame if the writer lock is
// free and the ring has room now, without waiting; false means nothing was
// written (send would have waited). On a closed endpoint it reports true:
// there is nobody left to answer.
func (e *endpoint) trySend(h FrameHeader, payload []byte) bool {
	if len(payload) > int(e.maxFrame)-FrameHeaderSize || !e.tryLockW() {
		return false
	}
	if e.mem == nil {
		e.unlockW()
		return true
	}
	h.Flags |= FlagEnd
	if !e.tx.tryPut(h, payload) {
		e.unlockW()
		return false
	}
	e.unlockWAndWake()
	return true
}

// cancelStream sends a CANCEL frame for a stream without blocking the caller.
func (e *endpoint) cancelStream(method uint16, stream uint64) {
	cf := FrameHeader{Method: method, Flags: FlagCancel | FlagEnd, Stream: stream}
	if !e.tryLockW() {
		go func() {
			if e.lockW(nil) == nil {
				e.finishCancel(cf)
			}
		}()
		return
	}
	if e.mem == nil {
		e.unlockW()
		return
	}
	if e.tx.tryPut(cf, nil) {
		wake := e.tx.takeConsumerParked()
		e.unlockW()
		if wake {
			e.ring(doorbellData)
		}
		return
	}
	go e.finishCancel(cf)
}

// finishCancel runs with the writer lock held and writes cf once space
// allows or the endpoint closes; it unlocks.
func (e *endpoint) finishCancel(cf FrameHeader) {
	for e.mem != nil {
		if e.tx.tryPut(cf, nil) {
			wake := e.tx.takeConsumerParked()
			e.unlockW()
			if wake {
				e.ring(doorbellData)
			}
			return
		}
		if e.waitSpace(nil, e.tx.footprint(FrameHeaderSize)) != nil {
			break
		}
	}
	e.unlockW()
}

// waitSpace waits, holding the writer lock, until need bytes are free in the produced
// ring: it spins for e.spin.most, then parks until a SPACE doorbell (SPEC.md §6.4).
func (e *endpoint) waitSpace(ctx context.Context, need uint64) error {
	var ctxDone <-chan struct{}
	if ctx != nil {
		ctxDone = ctx.Done()
	}
	if e.spin.most > 0 && spinWait(e.spin.most, false, func() bool { return e.tx.fits(need) }) {
		return nil
	}
	e.spaceWaiting.Store(true)
	defer e.spaceWaiting.Store(false)
	if e.beforeSpaceWait != nil {
		e.beforeSpaceWait()
	}
	for {
		e.tx.park()
		if e.tx.fits(need) {
			e.tx.unpark()
			return nil
		}
		select {
		case <-e.spaceWake:
		case <-e.token: // client: nobody reads the socket, so we do
			_ = e.readTurn(ctx, func() bool {
				// Re-announce the wait each time: a SPACE doorbell
				// consumed the flag, and the space it announced may not
				// be enough yet (SPEC.md §6.4).
				if e.tx.fits(need) {
					return true
				}
				e.tx.park()
				return e.tx.fits(need)
			})
		case <-ctxDone:
			e.tx.unpark()
			return ctx.Err()
		case <-e.done:
			return e.err
		}
		e.tx.unpark()
		if e.tx.fits(need) {
			return nil
		}
	}
}

// readTurn takes a turn of reader duties with the token already taken,
// until stop holds, ctx (may be nil) ends or the endpoint closes, and hands
// the token on. See readUntil for the result.
func (e *endpoint) readTurn(ctx context.Context, stop func() bool) error {
	var ctxDone <-chan struct{}
	if ctx != nil {
		if ctxDone = ctx.Done(); ctxDone != nil {
			stopKick := context.AfterFunc(ctx, e.kickRead)
			defer stopKick()
		}
	}
	err := e.readUntil(stop, ctxDone)
	e.putToken()
	return err
}
