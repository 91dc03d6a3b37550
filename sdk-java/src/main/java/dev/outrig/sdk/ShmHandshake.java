package dev.outrig.sdk;

import io.grpc.Status;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;

/**
 * The client side of the handshake (api/shm/SPEC.md §8): HELLO, then WELCOME (PATH mode, the
 * only one a Java {@code SocketChannel} can take) or REJECT, then mapping and READY.
 */
final class ShmHandshake {
  static final int VERSION = 1;
  private static final byte HELLO = 0x01;
  private static final byte WELCOME = 0x02;
  private static final byte REJECT = 0x03;
  private static final byte READY = 0x04;
  private static final int MAX_MSG = 8192;
  private static final int WELCOME_PATH = 0x2;
  private static final int MAX_APP_ID = 256;

  /** A connected socket with its validated, attached segment. */
  record Result(SocketChannel socket, ShmSegment segment) {}

  private ShmHandshake() {}

  /**
   * Connects to socketPath and performs the handshake within timeout.
   *
   * @throws UnavailableException when the socket does not answer or the handshake fails; the
   *     sidecar's REJECT code when it rejects
   */
  static Result connect(String socketPath, String appId, long timeoutMillis) {
    byte[] id = appId.getBytes(StandardCharsets.UTF_8);
    if (id.length > MAX_APP_ID) {
      throw ErrorMapping.invalidArgument("NewClient", "appId", "is longer than 256 bytes");
    }
    SocketChannel ch;
    try {
      ch = SocketChannel.open(StandardProtocolFamily.UNIX);
    } catch (IOException e) {
      throw unavailable("open socket: " + e, e);
    }
    ScheduledExecutorService timer =
        Executors.newSingleThreadScheduledExecutor(
            r -> {
              Thread t = new Thread(r, "outrig-shm-handshake-timer");
              t.setDaemon(true);
              return t;
            });
    ScheduledFuture<?> watchdog =
        timer.schedule(() -> closeQuietly(ch), timeoutMillis, TimeUnit.MILLISECONDS);
    try {
      ch.connect(UnixDomainSocketAddress.of(socketPath));
      ch.configureBlocking(true);
      writeFully(ch, hello(id));
      ByteBuffer body = readMessage(ch);
      byte type = body.get();
      if (type == REJECT) {
        throw reject(body);
      }
      if (type != WELCOME) {
        throw unavailable("handshake: unexpected message type " + type, null);
      }
      if (body.remaining() < 13) {
        throw unavailable("handshake: WELCOME too short", null);
      }
      int version = Short.toUnsignedInt(body.getShort());
      int flags = Short.toUnsignedInt(body.getShort());
      long segmentSize = body.getLong();
      int pathLen = Short.toUnsignedInt(body.getShort());
      if (version != VERSION) {
        throw unavailable("handshake: WELCOME version " + version + " was not offered", null);
      }
      if (flags != WELCOME_PATH) {
        throw unavailable("handshake: WELCOME flags " + flags + " (want PATH mode)", null);
      }
      if (pathLen < 1 || pathLen > 4096 || body.remaining() != pathLen) {
        throw unavailable("handshake: WELCOME path length " + pathLen + " is bad", null);
      }
      byte[] p = new byte[pathLen];
      body.get(p);
      String path = new String(p, StandardCharsets.UTF_8);
      if (!path.startsWith("/") || path.indexOf('\0') >= 0) {
        throw unavailable("handshake: WELCOME path is not absolute", null);
      }
      ShmSegment seg = ShmSegment.map(path, segmentSize, version);
      seg.attach(ProcessHandle.current().pid());
      ByteBuffer ready = ByteBuffer.allocate(5).order(ByteOrder.LITTLE_ENDIAN);
      ready.putInt(1).put(READY).flip();
      writeFully(ch, ready);
      if (!watchdog.cancel(false)) {
        throw unavailable("handshake: timed out after " + timeoutMillis + " ms", null);
      }
      return new Result(ch, seg);
    } catch (IOException e) {
      closeQuietly(ch);
      throw unavailable("handshake with " + socketPath + ": " + e, e);
    } catch (RuntimeException e) {
      closeQuietly(ch);
      throw e;
    } finally {
      watchdog.cancel(false);
      timer.shutdownNow();
    }
  }

  private static ByteBuffer hello(byte[] appId) {
    int bodyLen = 1 + 26 + appId.length;
    ByteBuffer b = ByteBuffer.allocate(4 + bodyLen).order(ByteOrder.LITTLE_ENDIAN);
    b.putInt(bodyLen).put(HELLO);
    b.put("OSHM".getBytes(StandardCharsets.US_ASCII));
    b.putShort((short) VERSION).putShort((short) VERSION);
    b.putInt(0); // flags: cannot receive a descriptor
    b.putInt(0).putInt(0); // ring sizes: the server's defaults
    b.putInt((int) ProcessHandle.current().pid());
    b.putShort((short) appId.length).put(appId);
    return b.flip();
  }

  /** Reads exactly one handshake message (never beyond it) and returns type + body. */
  private static ByteBuffer readMessage(SocketChannel ch) throws IOException {
    ByteBuffer len = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN);
    readFully(ch, len);
    int n = len.flip().getInt();
    if (n < 1 || n > MAX_MSG) {
      throw unavailable("handshake: message length " + Integer.toUnsignedString(n), null);
    }
    ByteBuffer body = ByteBuffer.allocate(n).order(ByteOrder.LITTLE_ENDIAN);
    readFully(ch, body);
    return body.flip();
  }

  private static OutrigException reject(ByteBuffer body) {
    if (body.remaining() < 6) {
      return unavailable("handshake: REJECT too short", null);
    }
    int code = body.getInt();
    int len = Short.toUnsignedInt(body.getShort());
    if (body.remaining() != len || code < 1 || code > 16) {
      return unavailable("handshake: malformed REJECT", null);
    }
    byte[] m = new byte[len];
    body.get(m);
    return ErrorMapping.create(
        Status.fromCodeValue(code).getCode(),
        "NewClient",
        "shared memory rejected: " + new String(m, StandardCharsets.UTF_8),
        null,
        null);
  }

  static void readFully(SocketChannel ch, ByteBuffer b) throws IOException {
    while (b.hasRemaining()) {
      if (ch.read(b) < 0) {
        throw new IOException("the sidecar closed the socket");
      }
    }
  }

  static void writeFully(SocketChannel ch, ByteBuffer b) throws IOException {
    while (b.hasRemaining()) {
      ch.write(b);
    }
  }

  static void closeQuietly(SocketChannel ch) {
    try {
      ch.close();
    } catch (IOException ignored) {
      // closing: nothing to do
    }
  }

  private static UnavailableException unavailable(String msg, Throwable cause) {
    return new UnavailableException("NewClient", "shared memory: " + msg, null, cause);
  }
}
