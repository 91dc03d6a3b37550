package dev.outrig.sdk;

import java.io.IOException;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;

/**
 * The shared-memory segment of api/shm/SPEC.md §3, mapped from the file the sidecar names in
 * WELCOME (PATH mode): its header checked field by field, and the control words of the two
 * rings accessed with acquire/release {@link VarHandle}s (§4.4).
 */
final class ShmSegment {
  static final int HEADER_SIZE = 4096;
  static final int MIN_RING = 4096;
  static final int MAX_RING = 64 << 20;

  // Header fields (§3.2).
  private static final int OFF_MAGIC = 0x00;
  private static final int OFF_VERSION = 0x08;
  private static final int OFF_RESERVED_0A = 0x0A;
  private static final int OFF_HEADER_SIZE = 0x0C;
  private static final int OFF_SEGMENT_SIZE = 0x10;
  private static final int OFF_FLAGS = 0x18;
  private static final int OFF_MAX_FRAME = 0x1C;
  private static final int OFF_MAX_MESSAGE = 0x20;
  private static final int OFF_REQ_OFFSET = 0x28;
  private static final int OFF_REQ_SIZE = 0x30;
  private static final int OFF_RESP_OFFSET = 0x38;
  private static final int OFF_RESP_SIZE = 0x40;
  private static final int OFF_CLIENT_PID = 0x4C;
  private static final int OFF_SERVER_STATE = 0x50;
  private static final int OFF_CLIENT_STATE = 0x54;

  // Control lines (§3.3).
  static final int REQ_TAIL = 0x080;
  static final int REQ_PRODUCER_PARKED = 0x088;
  static final int REQ_HEAD = 0x100;
  static final int REQ_CONSUMER_PARKED = 0x108;
  static final int RESP_TAIL = 0x180;
  static final int RESP_PRODUCER_PARKED = 0x188;
  static final int RESP_HEAD = 0x200;
  static final int RESP_CONSUMER_PARKED = 0x208;

  static final int STATE_ATTACHED = 1;
  static final int STATE_CLOSED = 2;

  private static final byte[] MAGIC = "OUTRIGSM".getBytes(StandardCharsets.US_ASCII);

  static final VarHandle LONG =
      MethodHandles.byteBufferViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);
  static final VarHandle INT =
      MethodHandles.byteBufferViewVarHandle(int[].class, ByteOrder.LITTLE_ENDIAN);

  final MappedByteBuffer buf;
  final int requestRingOffset;
  final int requestRingSize;
  final int responseRingOffset;
  final int responseRingSize;
  final int maxFrame;
  final int maxMessage;

  private ShmSegment(MappedByteBuffer buf, int reqSize, int respSize, int maxFrame, int maxMsg) {
    this.buf = buf;
    this.requestRingOffset = HEADER_SIZE;
    this.requestRingSize = reqSize;
    this.responseRingOffset = HEADER_SIZE + reqSize;
    this.responseRingSize = respSize;
    this.maxFrame = maxFrame;
    this.maxMessage = maxMsg;
  }

  /**
   * Opens the segment file (no symlinks), checks it is a regular file of exactly segmentSize
   * bytes, maps it read-write, closes the descriptor and validates the header.
   */
  static ShmSegment map(String path, long segmentSize, int version) {
    Path p = Path.of(path);
    MappedByteBuffer mb;
    try (FileChannel fc =
        FileChannel.open(
            p, StandardOpenOption.READ, StandardOpenOption.WRITE, LinkOption.NOFOLLOW_LINKS)) {
      BasicFileAttributes a =
          java.nio.file.Files.readAttributes(p, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
      if (!a.isRegularFile() || fc.size() != segmentSize) {
        throw bad("segment file", path + " is not a regular file of " + segmentSize + " bytes");
      }
      if (segmentSize > Integer.MAX_VALUE) {
        throw bad("segment_size", segmentSize + " is larger than a Java mapping allows");
      }
      mb = fc.map(FileChannel.MapMode.READ_WRITE, 0, segmentSize);
    } catch (IOException e) {
      throw new UnavailableException(
          "NewClient", "shared memory: map " + path + ": " + e, null, e);
    }
    mb.order(ByteOrder.LITTLE_ENDIAN);
    return validate(mb, segmentSize, version);
  }

  /** Checks every "checked" header field of §3.2 (read once each, then used). */
  static ShmSegment validate(MappedByteBuffer b, long segmentSize, int version) {
    for (int i = 0; i < MAGIC.length; i++) {
      if (b.get(OFF_MAGIC + i) != MAGIC[i]) {
        throw bad("magic", "not OUTRIGSM");
      }
    }
    int v = Short.toUnsignedInt(b.getShort(OFF_VERSION));
    if (v != version) {
      throw bad("version", v + " differs from the WELCOME version " + version);
    }
    if (b.getShort(OFF_RESERVED_0A) != 0) {
      throw bad("reserved", "0x0A is not zero");
    }
    if (b.getInt(OFF_HEADER_SIZE) != HEADER_SIZE) {
      throw bad("header_size", "is not 4096");
    }
    long segSize = b.getLong(OFF_SEGMENT_SIZE);
    if (segSize != segmentSize) {
      throw bad("segment_size", segSize + " differs from WELCOME's " + segmentSize);
    }
    if (b.getInt(OFF_FLAGS) != 0) {
      throw bad("flags", "non-zero");
    }
    long reqOff = b.getLong(OFF_REQ_OFFSET);
    long reqSize = b.getLong(OFF_REQ_SIZE);
    long respOff = b.getLong(OFF_RESP_OFFSET);
    long respSize = b.getLong(OFF_RESP_SIZE);
    if (reqOff != HEADER_SIZE) {
      throw bad("request_ring_offset", reqOff + " is not 4096");
    }
    checkRingSize("request_ring_size", reqSize);
    checkRingSize("response_ring_size", respSize);
    if (respOff != HEADER_SIZE + reqSize) {
      throw bad("response_ring_offset", respOff + " is not 4096 + R");
    }
    if (HEADER_SIZE + reqSize + respSize != segmentSize) {
      throw bad("segment_size", "is not 4096 + R + S");
    }
    long maxFrame = Integer.toUnsignedLong(b.getInt(OFF_MAX_FRAME));
    if (maxFrame % 8 != 0 || maxFrame < 32 || maxFrame > Math.min(reqSize, respSize) / 2) {
      throw bad("max_frame", maxFrame + " is not a multiple of 8 in [32, min(R,S)/2]");
    }
    long maxMsg = Integer.toUnsignedLong(b.getInt(OFF_MAX_MESSAGE));
    if (maxMsg == 0 || maxMsg > Integer.MAX_VALUE - 8) {
      throw bad("max_message", maxMsg + " is out of range");
    }
    int serverState = (int) INT.getVolatile(b, OFF_SERVER_STATE);
    if (serverState != STATE_ATTACHED) {
      throw bad("server_state", serverState + " is not 1 (attached)");
    }
    return new ShmSegment(b, (int) reqSize, (int) respSize, (int) maxFrame, (int) maxMsg);
  }

  private static void checkRingSize(String field, long n) {
    if (n < MIN_RING || n > MAX_RING || Long.bitCount(n) != 1) {
      throw bad(field, n + " is not a power of two in [4096, 67108864]");
    }
  }

  /** Writes client_pid and stores client_state = 1 (before READY, §8.3). */
  void attach(long pid) {
    buf.putInt(OFF_CLIENT_PID, (int) pid);
    INT.setVolatile(buf, OFF_CLIENT_STATE, STATE_ATTACHED);
  }

  /** Stores client_state = 2 (before closing the socket, §9.2). */
  void markClosed() {
    INT.setVolatile(buf, OFF_CLIENT_STATE, STATE_CLOSED);
  }

  private static UnavailableException bad(String field, String why) {
    return new UnavailableException(
        "NewClient", "shared memory: bad segment header " + field + ": " + why, null, null);
  }
}
