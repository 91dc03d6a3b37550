package dev.outrig.sdk;

import io.grpc.Status;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.nio.MappedByteBuffer;
import java.nio.channels.SocketChannel;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * One shared-memory connection (api/shm/SPEC.md): callers produce request frames into the
 * request ring under a lock; one reader thread consumes the response ring, completes the
 * calls, and when the ring stays empty parks and blocks reading the socket's doorbells (which
 * also detects the sidecar's death at once). Once failed, a connection never reopens.
 */
final class ShmConnection implements AutoCloseable {
  private static final int FRAME_HEADER = 24;
  private static final int F_END = 0x1;
  private static final int F_ERROR = 0x2;
  private static final int F_CANCEL = 0x4;
  private static final int F_PAD = 0x8;
  private static final byte DATA = 0x01;
  private static final byte SPACE = 0x02;
  /** Longest a side spins before parking (§6.6); the reader adapts between these bounds. */
  private static final long MAX_SPIN_NANOS = 20_000;

  private static final long MIN_SPIN_NANOS = 1_000;

  /** Calls must not have overlapped for this long for a call to count as lone. */
  private static final long LONE_QUIET_NANOS = 10_000_000;

  /** A lone budget at its floor spins the whole budget every PROBE_EVERY-th time (§6.6). */
  private static final int PROBE_EVERY = 16;

  /** One call waiting for its response. */
  static final class Call {
    final int method;
    final long stream;
    final CompletableFuture<byte[]> future = new CompletableFuture<>();

    Call(int method, long stream) {
      this.method = method;
      this.stream = stream;
    }
  }

  /** A response message being reassembled from several fragments (reader thread only). */
  private static final class Partial {
    final int method;
    final int error;
    final ByteArrayOutputStream bytes = new ByteArrayOutputStream();

    Partial(int method, int error) {
      this.method = method;
      this.error = error;
    }
  }

  private final SocketChannel socket;
  private final ShmSegment seg;
  private final MappedByteBuffer buf;
  private final Map<Long, Call> pending = new ConcurrentHashMap<>();
  private final AtomicLong nextStream = new AtomicLong();
  private final Thread reader;

  // Producer side of the request ring, guarded by writeLock.
  private final ReentrantLock writeLock = new ReentrantLock();
  private final Condition space = writeLock.newCondition();
  private long reqTail;

  // Consumer side of the response ring: reader thread only.
  private long respHead;
  private final Map<Long, Partial> partials = new HashMap<>();

  private volatile OutrigException failure;

  // Polling for a lone caller (OutrigClientBuilder.busyPoll, SPEC.md §6.6): while at most one
  // call is in flight and calls have not overlapped for LONE_QUIET_NANOS, the reader thread polls
  // the response ring for up to loneSpin (adaptive between loneSpinMax/16 and loneSpinMax) — also
  // after a reply, since a caller calling back to back sends its next request soon — and a
  // blocking caller polls its future as long, both yielding their CPU between polls, so that the
  // sidecar rings no doorbell and no thread of the app sleeps during the call. An app that calls
  // seldom finds the reader asleep (its spins time out and shrink) and gains nothing.
  private final long loneSpinMax;
  private volatile long loneSpin;
  private int loneAtFloor; // reader thread only
  private volatile long overlapAt = System.nanoTime() - LONE_QUIET_NANOS - 1;

  ShmConnection(SocketChannel socket, ShmSegment seg, long loneSpinNanos) {
    this.socket = socket;
    this.seg = seg;
    this.buf = seg.buf;
    this.loneSpinMax = Math.max(0, loneSpinNanos);
    this.loneSpin = this.loneSpinMax;
    this.reader = new Thread(this::readLoop, "outrig-shm-reader");
    reader.setDaemon(true);
    reader.start();
  }

  /** Whether the connection has failed or was closed (it then never reopens). */
  boolean isDead() {
    return failure != null;
  }

  /**
   * Sends one request message and returns the call; its future completes with the response
   * payload, or exceptionally with an {@link OutrigException}. Blocks while the request ring
   * has no space (back-pressure).
   *
   * @param timeoutNanos the caller's remaining deadline, 0 for none (sent as timeout_us)
   */
  Call start(int method, byte[] payload, long timeoutNanos) {
    long stream = nextStream.incrementAndGet();
    Call c = new Call(method, stream);
    OutrigException f = failure;
    if (f != null) {
      c.future.completeExceptionally(f);
      return c;
    }
    if (payload.length > seg.maxMessage) {
      c.future.completeExceptionally(
          new RateLimitedException(
              null,
              "shared memory: message of " + payload.length + " bytes exceeds max_message "
                  + seg.maxMessage,
              null,
              null));
      return c;
    }
    long us = timeoutNanos <= 0 ? 0 : (timeoutNanos + 999) / 1000;
    int timeoutUs = us > 0xFFFF_FFFFL ? 0 : (int) us;
    pending.put(stream, c);
    if (pending.size() > 1) {
      overlapAt = System.nanoTime();
    }
    writeLock.lock();
    try {
      int maxPayload = seg.maxFrame - FRAME_HEADER;
      int off = 0;
      do {
        int n = Math.min(maxPayload, payload.length - off);
        boolean last = off + n == payload.length;
        writeFrame(method, last ? F_END : 0, stream, timeoutUs, payload, off, n, true);
        off += n;
      } while (off < payload.length);
    } catch (OutrigException e) {
      pending.remove(stream);
      c.future.completeExceptionally(e);
    } finally {
      writeLock.unlock();
    }
    return c;
  }

  /** Whether the calls in flight are one lone caller's (see loneSpinMax). */
  private boolean lone() {
    return loneSpinMax > 0
        && pending.size() <= 1
        && System.nanoTime() - overlapAt > LONE_QUIET_NANOS;
  }

  /**
   * Polls c's future for up to the lone budget when c is a lone call, so that the reader thread
   * (polling too) hands the reply over without waking this thread; returns at once otherwise.
   */
  void awaitPolling(Call c) {
    if (!lone()) {
      return;
    }
    long until = System.nanoTime() + loneSpin;
    for (int i = 1; !c.future.isDone(); i++) {
      if ((i & 31) == 0) {
        if (System.nanoTime() - until > 0) {
          return;
        }
        Thread.yield();
      } else {
        Thread.onSpinWait();
      }
    }
  }

  /**
   * Gives up on a call (deadline or cancellation): forgets it and writes a CANCEL frame if the
   * request ring has room right now; the caller never waits for space (§10.2). A response that
   * arrives later is dropped.
   */
  void abandon(Call c) {
    if (pending.remove(c.stream) == null || failure != null) {
      return;
    }
    if (writeLock.tryLock()) {
      try {
        writeFrame(c.method, F_CANCEL | F_END, c.stream, 0, new byte[0], 0, 0, false);
      } catch (OutrigException ignored) {
        // the connection failed meanwhile; nothing left to cancel
      } finally {
        writeLock.unlock();
      }
    }
  }

  /** Writes one frame (and a PAD before it if needed); writeLock held. */
  private void writeFrame(
      int method, int flags, long stream, int timeoutUs, byte[] p, int off, int n, boolean wait) {
    int size = seg.requestRingSize;
    int base = seg.requestRingOffset;
    int len = FRAME_HEADER + n;
    int aligned = align8(len);
    int i;
    int toEnd;
    int need;
    while (true) {
      checkAlive();
      i = (int) (reqTail & (size - 1));
      toEnd = size - i;
      need = aligned <= toEnd ? aligned : toEnd + aligned;
      long head = (long) ShmSegment.LONG.getAcquire(buf, ShmSegment.REQ_HEAD);
      long used = reqTail - head;
      if (used < 0 || used > size) {
        throw protocolError("request ring head " + head + " is outside [tail-N, tail]");
      }
      if (size - used >= need) {
        break;
      }
      if (!wait) {
        throw new UnavailableException(null, "shared memory: request ring full", null, null);
      }
      awaitSpace(need);
    }
    if (aligned > toEnd) {
      int at = base + i;
      buf.putInt(at, toEnd);
      buf.putShort(at + 4, (short) 0);
      buf.putShort(at + 6, (short) F_PAD);
      i = 0;
    }
    int at = base + i;
    buf.putInt(at, len);
    buf.putShort(at + 4, (short) method);
    buf.putShort(at + 6, (short) flags);
    buf.putLong(at + 8, stream);
    buf.putInt(at + 16, timeoutUs);
    buf.putInt(at + 20, 0);
    if (n > 0) {
      buf.put(at + FRAME_HEADER, p, off, n);
    }
    for (int k = len; k < aligned; k++) {
      buf.put(at + k, (byte) 0);
    }
    reqTail += need;
    ShmSegment.LONG.setRelease(buf, ShmSegment.REQ_TAIL, reqTail);
    VarHandle.fullFence();
    if ((int) ShmSegment.INT.getVolatile(buf, ShmSegment.REQ_CONSUMER_PARKED) == 1
        && ShmSegment.INT.compareAndSet(buf, ShmSegment.REQ_CONSUMER_PARKED, 1, 0)) {
      ring(DATA);
    }
  }

  /** Waits for request ring space (§6.4): spin briefly, then park until SPACE; writeLock held. */
  private void awaitSpace(int need) {
    int size = seg.requestRingSize;
    long until = System.nanoTime() + MAX_SPIN_NANOS;
    while (System.nanoTime() < until) {
      long head = (long) ShmSegment.LONG.getAcquire(buf, ShmSegment.REQ_HEAD);
      if (size - (reqTail - head) >= need) {
        return;
      }
      Thread.onSpinWait();
    }
    ShmSegment.INT.setVolatile(buf, ShmSegment.REQ_PRODUCER_PARKED, 1);
    VarHandle.fullFence();
    long head = (long) ShmSegment.LONG.getAcquire(buf, ShmSegment.REQ_HEAD);
    if (size - (reqTail - head) < need) {
      try {
        // SPACE arrives through the reader thread, which signals; the timed wait also covers
        // a doorbell the reader has not read yet because it is busy consuming.
        space.await(5, TimeUnit.MILLISECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        ShmSegment.INT.compareAndSet(buf, ShmSegment.REQ_PRODUCER_PARKED, 1, 0);
        throw new OutrigException(Status.Code.CANCELLED, null, "interrupted", null, e);
      }
    }
    ShmSegment.INT.compareAndSet(buf, ShmSegment.REQ_PRODUCER_PARKED, 1, 0);
  }

  // ------------------------------------------------------------------ reader thread

  private void readLoop() {
    ByteBuffer bells = ByteBuffer.allocate(256);
    long spin = 5_000;
    try {
      while (failure == null) {
        if (drain()) {
          continue;
        }
        if (lone()) {
          if (spinLone()) {
            continue;
          }
        } else {
          long until = System.nanoTime() + spin;
          boolean caught = false;
          while (System.nanoTime() < until) {
            if ((long) ShmSegment.LONG.getAcquire(buf, ShmSegment.RESP_TAIL) != respHead) {
              caught = true;
              break;
            }
            Thread.onSpinWait();
          }
          if (caught) {
            spin = Math.min(spin * 2, MAX_SPIN_NANOS);
            continue;
          }
          spin = Math.max(spin / 2, MIN_SPIN_NANOS);
        }
        ShmSegment.INT.setVolatile(buf, ShmSegment.RESP_CONSUMER_PARKED, 1);
        VarHandle.fullFence();
        if ((long) ShmSegment.LONG.getAcquire(buf, ShmSegment.RESP_TAIL) != respHead) {
          ShmSegment.INT.compareAndSet(buf, ShmSegment.RESP_CONSUMER_PARKED, 1, 0);
          continue;
        }
        bells.clear();
        if (socket.read(bells) < 0) {
          throw new IOException("the sidecar closed the shared-memory socket");
        }
        bells.flip();
        boolean spaceRung = false;
        while (bells.hasRemaining()) {
          byte b = bells.get();
          if (b == SPACE) {
            spaceRung = true;
          } else if (b != DATA) {
            throw protocolError("unknown doorbell byte " + b);
          }
        }
        if (spaceRung) {
          signalSpace();
        }
        ShmSegment.INT.compareAndSet(buf, ShmSegment.RESP_CONSUMER_PARKED, 1, 0);
      }
    } catch (IOException e) {
      fail(new UnavailableException(null, "shared memory: " + e.getMessage(), null, e));
    } catch (OutrigException e) {
      fail(e);
    } catch (RuntimeException | Error e) {
      fail(new UnavailableException(null, "shared memory: reader failed: " + e, null, e));
    }
  }

  /**
   * The reader's spin while a lone call waits (reader thread): polls the response ring for up
   * to the lone budget, yielding the CPU every 32 polls (the sidecar and its backend need the
   * CPUs too), and adapts the budget as the Go client does (§6.6): a catch doubles it, a
   * timeout halves it down to a sixteenth, and every PROBE_EVERY-th spin at that floor spins
   * the whole budget so that it grows back once replies are fast again.
   *
   * @return whether the ring has data
   */
  private boolean spinLone() {
    long floor = loneSpinMax / 16;
    long d = loneSpin;
    if (d <= floor && ++loneAtFloor % PROBE_EVERY == 0) {
      d = loneSpinMax;
    }
    long start = System.nanoTime();
    for (int i = 1; ; i++) {
      if ((long) ShmSegment.LONG.getAcquire(buf, ShmSegment.RESP_TAIL) != respHead) {
        loneSpin = Math.min(loneSpinMax, 2 * d);
        return true;
      }
      if ((i & 31) == 0) {
        if (System.nanoTime() - start > d) {
          loneSpin = Math.max(floor, loneSpin / 2);
          return false;
        }
        Thread.yield();
      } else {
        Thread.onSpinWait();
      }
    }
  }

  /** Consumes every available response frame (§4.3); false when the ring was empty. */
  private boolean drain() {
    int size = seg.responseRingSize;
    int base = seg.responseRingOffset;
    long tail = (long) ShmSegment.LONG.getAcquire(buf, ShmSegment.RESP_TAIL);
    if (tail == respHead) {
      return false;
    }
    long published = respHead;
    while (respHead != tail) {
      long used = tail - respHead;
      if (used < 0 || used > size || used % 8 != 0) {
        throw protocolError("response ring holds " + used + " bytes");
      }
      int i = (int) (respHead & (size - 1));
      int avail = (int) Math.min(used, size - i);
      if (avail < 8) {
        throw protocolError("fewer than 8 bytes at the response ring head");
      }
      int at = base + i;
      int len = buf.getInt(at);
      int method = Short.toUnsignedInt(buf.getShort(at + 4));
      int flags = Short.toUnsignedInt(buf.getShort(at + 6));
      if ((flags & ~0xF) != 0) {
        throw protocolError("reserved flag bits " + flags);
      }
      if ((flags & F_PAD) != 0) {
        if (flags != F_PAD || method != 0 || len % 8 != 0 || len < 8 || len > avail
            || i + len != size) {
          throw protocolError("bad PAD frame");
        }
        respHead += len;
        continue;
      }
      if (len < FRAME_HEADER || len > seg.maxFrame || align8(len) > avail) {
        throw protocolError("frame length " + Integer.toUnsignedString(len));
      }
      long stream = buf.getLong(at + 8);
      int timeoutUs = buf.getInt(at + 16);
      int reserved = buf.getInt(at + 20);
      if (reserved != 0 || method == 0 || stream == 0 || (flags & F_CANCEL) != 0
          || timeoutUs != 0) {
        throw protocolError("bad response frame header");
      }
      byte[] payload = new byte[len - FRAME_HEADER];
      buf.get(at + FRAME_HEADER, payload);
      respHead += align8(len);
      onFrame(method, flags, stream, payload);
      if (respHead - published >= size / 4) {
        publishHead();
        published = respHead;
      }
    }
    publishHead();
    return true;
  }

  private void publishHead() {
    ShmSegment.LONG.setRelease(buf, ShmSegment.RESP_HEAD, respHead);
    VarHandle.fullFence();
    if ((int) ShmSegment.INT.getVolatile(buf, ShmSegment.RESP_PRODUCER_PARKED) == 1
        && ShmSegment.INT.compareAndSet(buf, ShmSegment.RESP_PRODUCER_PARKED, 1, 0)) {
      ring(SPACE);
    }
  }

  private void onFrame(int method, int flags, long stream, byte[] payload) {
    int error = flags & F_ERROR;
    boolean end = (flags & F_END) != 0;
    Partial part = partials.get(stream);
    byte[] message;
    if (part == null && end) {
      message = payload;
    } else {
      if (part == null) {
        part = new Partial(method, error);
        partials.put(stream, part);
      } else if (part.method != method || part.error != error) {
        throw protocolError("fragment of stream " + stream + " changes method or ERROR");
      }
      if (part.bytes.size() + (long) payload.length > seg.maxMessage) {
        throw protocolError("response of stream " + stream + " exceeds max_message");
      }
      part.bytes.write(payload, 0, payload.length);
      if (!end) {
        return;
      }
      partials.remove(stream);
      message = part.bytes.toByteArray();
    }
    Call c = pending.get(stream);
    if (c == null) {
      return; // abandoned (deadline, cancel): drop
    }
    if (c.method != method) {
      throw protocolError("response method " + method + " differs from request " + c.method);
    }
    pending.remove(stream);
    if (error == 0) {
      c.future.complete(message);
      return;
    }
    c.future.completeExceptionally(ErrorMapping.fromRpcStatus(message, "shared memory"));
  }

  // ------------------------------------------------------------------ teardown

  private void ring(byte bell) {
    try {
      ByteBuffer b = ByteBuffer.allocate(1).put(0, bell);
      while (b.hasRemaining()) {
        socket.write(b);
      }
    } catch (IOException e) {
      fail(new UnavailableException(null, "shared memory: doorbell: " + e.getMessage(), null, e));
    }
  }

  private void signalSpace() {
    writeLock.lock();
    try {
      space.signalAll();
    } finally {
      writeLock.unlock();
    }
  }

  private void checkAlive() {
    OutrigException f = failure;
    if (f != null) {
      throw f;
    }
  }

  private UnavailableException protocolError(String what) {
    return new UnavailableException(null, "shared memory protocol error: " + what, null, null);
  }

  /** Marks the connection dead, closes the socket and fails every call in flight. */
  private void fail(OutrigException why) {
    synchronized (this) {
      if (failure != null) {
        return;
      }
      failure = why;
    }
    seg.markClosed();
    ShmHandshake.closeQuietly(socket);
    for (Call c : pending.values()) {
      c.future.completeExceptionally(why);
    }
    pending.clear();
    signalSpace();
  }

  /** Closes the connection: calls in flight fail with UNAVAILABLE. Idempotent. */
  @Override
  public void close() {
    fail(new UnavailableException(null, "shared memory: the client is closed", null, null));
    if (Thread.currentThread() != reader) {
      try {
        reader.join(1000);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
  }

  private static int align8(int n) {
    return (n + 7) & ~7;
  }
}
