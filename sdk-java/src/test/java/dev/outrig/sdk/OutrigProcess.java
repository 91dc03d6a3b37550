package dev.outrig.sdk;

import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.HttpURLConnection;
import java.net.ServerSocket;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * A real {@code outrig} process (sidecar or control plane) or example app started by an
 * integration test. The binary comes from the system property {@code outrig.bin}, which
 * run-tests.sh sets after building it from this repository; without it the tests fail (they
 * never skip).
 */
final class OutrigProcess implements AutoCloseable {
  private final Process process;
  final Path log;
  final int adminPort;

  private OutrigProcess(Process process, Path log, int adminPort) {
    this.process = process;
    this.log = log;
    this.adminPort = adminPort;
  }

  /** The outrig binary built by run-tests.sh. */
  static Path binary() {
    String b = System.getProperty("outrig.bin", "");
    if (b.isEmpty()) {
      fail("system property outrig.bin is not set: run sdk-java/run-tests.sh, which builds the"
          + " sidecar and passes -Doutrig.bin=<path>");
    }
    Path p = Path.of(b);
    if (!Files.isExecutable(p)) {
      fail("outrig.bin " + b + " is not an executable file");
    }
    return p;
  }

  /** The repository root (for examples/resources). */
  static Path repo() {
    return Path.of(System.getProperty("outrig.repo", "..")).toAbsolutePath().normalize();
  }

  static int freePort() {
    try (ServerSocket s = new ServerSocket(0)) {
      return s.getLocalPort();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /**
   * Starts {@code outrig sidecar} for appId listening on unix://sock, and waits until its
   * /readyz answers 200.
   */
  static OutrigProcess sidecar(Path dir, String appId, Path sock, List<String> extra)
      throws Exception {
    int admin = freePort();
    List<String> cmd = new ArrayList<>(List.of(
        binary().toString(), "sidecar", "--app-id", appId,
        "--listen", "unix://" + sock,
        "--admin-listen", "127.0.0.1:" + admin,
        "--state-file", dir.resolve(appId + "-" + admin + ".config.json").toString(),
        "--log-level", "warn"));
    cmd.addAll(extra);
    OutrigProcess p = start(cmd, dir.resolve("sidecar-" + appId + "-" + admin + ".log"), Map.of(), admin);
    p.awaitReady();
    return p;
  }

  /** Starts {@code outrig control-plane} on a free port; returns it with its address. */
  static OutrigProcess controlPlane(Path dir, Path resources, int port) throws Exception {
    List<String> cmd = List.of(
        binary().toString(), "control-plane", "--resources", resources.toString(),
        "--listen", "127.0.0.1:" + port, "--log-level", "warn");
    OutrigProcess p = start(cmd, dir.resolve("control-plane.log"), Map.of(), 0);
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
    while (System.nanoTime() < deadline) {
      try (java.net.Socket s = new java.net.Socket("127.0.0.1", port)) {
        return p;
      } catch (IOException e) {
        p.checkAlive();
        Thread.sleep(50);
      }
    }
    p.close();
    fail("control plane did not listen on " + port + "\n" + p.tail());
    return p;
  }

  /** Starts any program with environment additions, output to log. */
  static OutrigProcess start(List<String> cmd, Path log, Map<String, String> env, int admin)
      throws IOException {
    ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile());
    pb.environment().putAll(env);
    return new OutrigProcess(pb.start(), log, admin);
  }

  void awaitReady() throws Exception {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    URI uri = URI.create("http://127.0.0.1:" + adminPort + "/readyz");
    while (System.nanoTime() < deadline) {
      checkAlive();
      try {
        HttpURLConnection c = (HttpURLConnection) uri.toURL().openConnection();
        c.setConnectTimeout(500);
        c.setReadTimeout(1000);
        if (c.getResponseCode() == 200) {
          return;
        }
      } catch (IOException e) {
        // not listening yet
      }
      Thread.sleep(50);
    }
    close();
    fail("sidecar not ready within 30s\n" + tail());
  }

  /** Waits until the log contains text. */
  void awaitLog(String text, long seconds) throws Exception {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
    while (System.nanoTime() < deadline) {
      if (Files.readString(log).contains(text)) {
        return;
      }
      checkAlive();
      Thread.sleep(50);
    }
    fail("\"" + text + "\" not logged within " + seconds + "s\n" + tail());
  }

  void checkAlive() {
    if (!process.isAlive()) {
      fail("process exited with " + process.exitValue() + "\n" + tail());
    }
  }

  String tail() {
    try {
      List<String> lines = Files.readAllLines(log);
      return String.join("\n", lines.subList(Math.max(0, lines.size() - 40), lines.size()));
    } catch (IOException e) {
      return "(no log: " + e + ")";
    }
  }

  /** Stops the process (SIGTERM, then SIGKILL after 10 s). */
  @Override
  public void close() throws InterruptedException {
    process.destroy();
    if (!process.waitFor(10, TimeUnit.SECONDS)) {
      process.destroyForcibly();
      process.waitFor(5, TimeUnit.SECONDS);
    }
  }

  /** Kills the process at once (SIGKILL), as a crash would. */
  void kill() throws InterruptedException {
    process.destroyForcibly();
    process.waitFor(5, TimeUnit.SECONDS);
  }
}
