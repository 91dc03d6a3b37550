package dev.outrig.examples;

import dev.outrig.sdk.OutrigClient;
import dev.outrig.sdk.OutrigClientBuilder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CountDownLatch;

/**
 * Measures GetState from Java through the sidecar, over gRPC (Unix socket) and over shared
 * memory: latency percentiles of one caller, then throughput of several concurrent callers.
 * Every call is timed with System.nanoTime after a warm-up. Prints Markdown table rows
 * ("| Java | transport | callers | calls | p50 µs | p90 | p99 | p99.9 | ops/s |"); bench/sdkget is
 * its Go twin.
 *
 * <p>System properties: {@code address} (default unix:///tmp/outrig.sock), {@code shm} (the
 * shared-memory socket; empty skips it), {@code warmup} (default 20000), {@code calls} (default
 * 100000), {@code threads} (default 4).
 */
public final class GetStateBench {
  private GetStateBench() {}

  /**
   * Runs the benchmark.
   *
   * @param args unused
   */
  public static void main(String[] args) {
    String address = System.getProperty("address", "unix:///tmp/outrig.sock");
    String shm = System.getProperty("shm", "");
    int warmup = Integer.getInteger("warmup", 20_000);
    int calls = Integer.getInteger("calls", 100_000);
    int threads = Integer.getInteger("threads", 4);
    List<String> rows = new ArrayList<>();
    List<String> kinds = new ArrayList<>(List.of("grpc-uds", "grpc-uds-unary"));
    if (!shm.isEmpty()) {
      kinds.add("shm");
    }
    for (String kind : kinds) {
      OutrigClientBuilder b = OutrigClient.builder().address(address);
      if (kind.equals("shm")) {
        b.sharedMemory(shm);
      } else if (kind.equals("grpc-uds-unary")) {
        b.unaryRpc(); // one gRPC call per call; "grpc-uds" is the default, Multiplex streams
      }
      try (OutrigClient c = b.build()) {
        c.saveState("statestore", "bench-key", new byte[100]);
        run(c, warmup, 1);
        rows.add(row(kind, 1, run(c, calls, 1)));
        run(c, warmup, threads);
        rows.add(row(kind, threads, run(c, calls, threads)));
      }
    }
    rows.forEach(System.out::println);
  }

  /** One measured run: per-call latencies (ns) of all callers and the wall time. */
  private record Result(long[] latencies, long wallNanos) {}

  private static Result run(OutrigClient c, int calls, int threads) {
    int per = calls / threads;
    long[][] lat = new long[threads][per];
    CountDownLatch start = new CountDownLatch(1);
    List<Thread> ts = new ArrayList<>();
    for (int t = 0; t < threads; t++) {
      long[] mine = lat[t];
      Thread th = new Thread(() -> {
        try {
          start.await();
        } catch (InterruptedException e) {
          return;
        }
        for (int i = 0; i < per; i++) {
          long t0 = System.nanoTime();
          if (!c.getState("statestore", "bench-key").found()) {
            throw new IllegalStateException("bench-key vanished");
          }
          mine[i] = System.nanoTime() - t0;
        }
      });
      th.start();
      ts.add(th);
    }
    long t0 = System.nanoTime();
    start.countDown();
    for (Thread th : ts) {
      try {
        th.join();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException(e);
      }
    }
    long wall = System.nanoTime() - t0;
    long[] all = Arrays.stream(lat).flatMapToLong(Arrays::stream).toArray();
    Arrays.sort(all);
    return new Result(all, wall);
  }

  private static String row(String kind, int threads, Result r) {
    long[] l = r.latencies();
    return String.format("| Java | %s | %d | %d | %.1f | %.1f | %.1f | %.1f | %.0f |",
        kind, threads, l.length, pct(l, 0.50), pct(l, 0.90), pct(l, 0.99), pct(l, 0.999),
        l.length / (r.wallNanos() / 1e9));
  }

  private static double pct(long[] sorted, double q) {
    int i = (int) Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1);
    return sorted[Math.max(0, i)] / 1000.0;
  }
}
