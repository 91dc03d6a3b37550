package dev.outrig.sdk;

import com.google.protobuf.ByteString;
import dev.outrig.api.runtime.v1.Etag;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Options of a state write or delete: {@link OutrigClient#saveState}, {@link
 * OutrigClient#deleteState}, the items of the bulk calls and the operations of a transaction.
 * Immutable and reusable across calls and threads.
 *
 * <pre>{@code
 * client.saveState("orders", "o1", data,
 *     StateOptions.builder().etag(item.etag()).ttl(Duration.ofMinutes(5)).build());
 * }</pre>
 *
 * <p>{@code ttl} and {@code contentType} apply to writes only; passing them to a delete fails
 * the call with {@link InvalidArgumentException}.
 */
public final class StateOptions {
  /** No options: last-write-wins, the store's consistency, no metadata. */
  public static final StateOptions NONE = builder().build();

  /** The component metadata key for a time to live, in seconds. */
  static final String TTL_KEY = "ttlInSeconds";

  private final String etag; // null: no ETag
  private final Duration ttl; // null: none
  private final Consistency consistency; // null: the store's
  private final Concurrency concurrency; // null: default
  private final Map<String, String> metadata;
  private final String contentType;

  private StateOptions(Builder b) {
    this.etag = b.etag;
    this.ttl = b.ttl;
    this.consistency = b.consistency;
    this.concurrency = b.concurrency;
    this.metadata = Map.copyOf(b.metadata);
    this.contentType = b.contentType;
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
   * Shortcut for {@code builder().etag(etag).build()}: first-write-wins on this ETag.
   *
   * @param etag the ETag read with the item
   * @return the options
   */
  public static StateOptions etag(String etag) {
    return builder().etag(etag).build();
  }

  /**
   * Shortcut for {@code builder().ttl(ttl).build()}.
   *
   * @param ttl the time to live, positive
   * @return the options
   */
  public static StateOptions ttl(Duration ttl) {
    return builder().ttl(ttl).build();
  }

  /** Builds {@link StateOptions}. Not thread-safe. */
  public static final class Builder {
    private String etag;
    private Duration ttl;
    private Consistency consistency;
    private Concurrency concurrency;
    private final Map<String, String> metadata = new LinkedHashMap<>();
    private String contentType = "";

    private Builder() {}

    /**
     * Makes the write or delete conditional on the item's current ETag (first-write-wins): if
     * the stored ETag differs the call fails with {@link EtagMismatchException}. The option's
     * presence, not its value, turns this on.
     *
     * @param etag the ETag, not null
     * @return this builder
     */
    public Builder etag(String etag) {
      if (etag == null) {
        throw ErrorMapping.invalidArgument("StateOptions", "etag", "is null");
      }
      this.etag = etag;
      return this;
    }

    /**
     * Makes a saved item expire after ttl (rounded up to whole seconds), through the {@code
     * ttlInSeconds} metadata key.
     *
     * @param ttl the time to live, positive
     * @return this builder
     */
    public Builder ttl(Duration ttl) {
      if (ttl == null || ttl.isNegative() || ttl.isZero()) {
        throw ErrorMapping.invalidArgument("StateOptions", "ttl", ttl + " must be positive");
      }
      this.ttl = ttl;
      return this;
    }

    /**
     * Asks for eventual or strong consistency.
     *
     * @param c the consistency, not null
     * @return this builder
     */
    public Builder consistency(Consistency c) {
      if (c == null) {
        throw ErrorMapping.invalidArgument("StateOptions", "consistency", "is null");
      }
      this.consistency = c;
      return this;
    }

    /**
     * Sets first-write-wins or last-write-wins.
     *
     * @param c the concurrency mode, not null
     * @return this builder
     */
    public Builder concurrency(Concurrency c) {
      if (c == null) {
        throw ErrorMapping.invalidArgument("StateOptions", "concurrency", "is null");
      }
      this.concurrency = c;
      return this;
    }

    /**
     * Adds component metadata; later keys win.
     *
     * @param md the metadata, copied
     * @return this builder
     */
    public Builder metadata(Map<String, String> md) {
      MetadataMaps.putAll("StateOptions", metadata, md);
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
      MetadataMaps.put("StateOptions", metadata, key, value);
      return this;
    }

    /**
     * Sets the content type of the saved value.
     *
     * @param contentType e.g. application/json
     * @return this builder
     */
    public Builder contentType(String contentType) {
      this.contentType = contentType == null ? "" : contentType;
      return this;
    }

    /**
     * Builds the immutable options.
     *
     * @return the options
     */
    public StateOptions build() {
      return new StateOptions(this);
    }
  }

  /** Fails when an option that means nothing for a delete is set. */
  void checkDelete(String op) {
    if (ttl != null) {
      throw ErrorMapping.invalidArgument(op, "option ttl", "does not apply to a delete");
    }
    if (!contentType.isEmpty()) {
      throw ErrorMapping.invalidArgument(op, "option contentType", "does not apply to a delete");
    }
  }

  Etag etagProto() {
    return etag == null ? null : Etag.newBuilder().setValue(etag).build();
  }

  dev.outrig.api.runtime.v1.StateOptions optionsProto() {
    if (consistency == null && concurrency == null) {
      return null;
    }
    var b = dev.outrig.api.runtime.v1.StateOptions.newBuilder();
    if (consistency != null) {
      b.setConsistency(consistency.toProto());
    }
    if (concurrency != null) {
      b.setConcurrency(concurrency.toProto());
    }
    return b.build();
  }

  /** The metadata to send: the user's plus the TTL key. */
  Map<String, String> metadataWithTtl() {
    if (ttl == null) {
      return metadata;
    }
    long secs = ttl.getSeconds() + (ttl.getNano() > 0 ? 1 : 0);
    Map<String, String> m = new LinkedHashMap<>(metadata);
    m.put(TTL_KEY, Long.toString(secs));
    return m;
  }

  /** The wire item for key and value (null value: a delete) with these options. */
  dev.outrig.api.runtime.v1.StateItem toItem(String key, byte[] value) {
    var b = dev.outrig.api.runtime.v1.StateItem.newBuilder().setKey(key);
    if (value != null) {
      b.setValue(ByteString.copyFrom(value));
    }
    Etag e = etagProto();
    if (e != null) {
      b.setEtag(e);
    }
    var o = optionsProto();
    if (o != null) {
      b.setOptions(o);
    }
    b.putAllMetadata(metadataWithTtl());
    b.setContentType(contentType);
    return b.build();
  }

  Map<String, String> metadata() {
    return metadata;
  }
}
