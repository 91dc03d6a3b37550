package dev.outrig.sdk;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Options of {@link OutrigClient#getState} and {@link OutrigClient#getBulkState}. Immutable
 * and reusable. {@code consistency} applies to {@code getState} only and {@code parallelism}
 * to {@code getBulkState} only; passing one to the other call fails it with {@link
 * InvalidArgumentException}.
 */
public final class ReadOptions {
  /** No options. */
  public static final ReadOptions NONE = builder().build();

  private final Consistency consistency;
  private final int parallelism;
  private final Map<String, String> metadata;

  private ReadOptions(Builder b) {
    this.consistency = b.consistency;
    this.parallelism = b.parallelism;
    this.metadata = Map.copyOf(b.metadata);
  }

  /**
   * A new builder with no options set.
   *
   * @return the builder
   */
  public static Builder builder() {
    return new Builder();
  }

  /**
   * Shortcut for {@code builder().consistency(c).build()}.
   *
   * @param c the consistency
   * @return the options
   */
  public static ReadOptions consistency(Consistency c) {
    return builder().consistency(c).build();
  }

  /** Builds {@link ReadOptions}. Not thread-safe. */
  public static final class Builder {
    private Consistency consistency;
    private int parallelism;
    private final Map<String, String> metadata = new LinkedHashMap<>();

    private Builder() {}

    /**
     * Asks for eventual or strong consistency ({@code getState} only).
     *
     * @param c the consistency, not null
     * @return this builder
     */
    public Builder consistency(Consistency c) {
      if (c == null) {
        throw ErrorMapping.invalidArgument("ReadOptions", "consistency", "is null");
      }
      this.consistency = c;
      return this;
    }

    /**
     * Bounds the parallel reads {@code getBulkState} may do on stores without a native bulk
     * get.
     *
     * @param n a positive bound
     * @return this builder
     */
    public Builder parallelism(int n) {
      if (n <= 0) {
        throw ErrorMapping.invalidArgument("ReadOptions", "parallelism", n + " must be positive");
      }
      this.parallelism = n;
      return this;
    }

    /**
     * Adds component metadata; later keys win.
     *
     * @param md the metadata, copied
     * @return this builder
     */
    public Builder metadata(Map<String, String> md) {
      MetadataMaps.putAll("ReadOptions", metadata, md);
      return this;
    }

    /**
     * Adds one component metadata entry.
     *
     * @param key the key
     * @param value the value
     * @return this builder
     */
    public Builder metadata(String key, String value) {
      MetadataMaps.put("ReadOptions", metadata, key, value);
      return this;
    }

    /**
     * Builds the immutable options.
     *
     * @return the options
     */
    public ReadOptions build() {
      return new ReadOptions(this);
    }
  }

  Consistency consistencyOrNull() {
    return consistency;
  }

  int parallelism() {
    return parallelism;
  }

  Map<String, String> metadata() {
    return metadata;
  }
}
