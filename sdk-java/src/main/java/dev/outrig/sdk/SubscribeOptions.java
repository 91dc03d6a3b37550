package dev.outrig.sdk;

import java.util.LinkedHashMap;
import java.util.Map;

/** Options of {@link OutrigClient#subscribe}. Immutable and reusable. */
public final class SubscribeOptions {
  /** The defaults: one handler at a time, reconnect, the sidecar's redelivery bound. */
  public static final SubscribeOptions DEFAULT = builder().build();

  private final String deadLetterTopic;
  private final int maxRedeliveries;
  private final Map<String, String> metadata;
  private final StreamOptions stream;

  private SubscribeOptions(Builder b) {
    this.deadLetterTopic = b.deadLetterTopic;
    this.maxRedeliveries = b.maxRedeliveries;
    this.metadata = Map.copyOf(b.metadata);
    this.stream = b.stream;
  }

  /**
   * A new builder with the defaults.
   *
   * @return the builder
   */
  public static Builder builder() {
    return new Builder();
  }

  /** Builds {@link SubscribeOptions}. Not thread-safe. */
  public static final class Builder {
    private String deadLetterTopic = "";
    private int maxRedeliveries;
    private final Map<String, String> metadata = new LinkedHashMap<>();
    private StreamOptions stream = StreamOptions.DEFAULT;

    private Builder() {}

    /**
     * Sends events that exhausted their redeliveries to topic (on the same pubsub). A
     * declarative Subscription for the same topic takes precedence.
     *
     * @param topic the dead-letter topic
     * @return this builder
     */
    public Builder deadLetterTopic(String topic) {
      this.deadLetterTopic = topic == null ? "" : topic;
      return this;
    }

    /**
     * Bounds how often an event answered RETRY (or not answered in time) is delivered again
     * before it is dead-lettered. 0 means the sidecar's default (3).
     *
     * @param n the bound, not negative
     * @return this builder
     */
    public Builder maxRedeliveries(int n) {
      if (n < 0) {
        throw ErrorMapping.invalidArgument(
            "SubscribeOptions", "maxRedeliveries", n + " must not be negative");
      }
      this.maxRedeliveries = n;
      return this;
    }

    /**
     * Adds component subscription metadata; later keys win.
     *
     * @param md the metadata, copied
     * @return this builder
     */
    public Builder metadata(Map<String, String> md) {
      MetadataMaps.putAll("SubscribeOptions", metadata, md);
      return this;
    }

    /**
     * Adds one metadata entry.
     *
     * @param key the key
     * @param value the value
     * @return this builder
     */
    public Builder metadata(String key, String value) {
      MetadataMaps.put("SubscribeOptions", metadata, key, value);
      return this;
    }

    /**
     * Sets the loop options (reconnect, backoff, handler concurrency, hook).
     *
     * @param stream the loop options
     * @return this builder
     */
    public Builder stream(StreamOptions stream) {
      this.stream = stream == null ? StreamOptions.DEFAULT : stream;
      return this;
    }

    /**
     * Builds the immutable options.
     *
     * @return the options
     */
    public SubscribeOptions build() {
      return new SubscribeOptions(this);
    }
  }

  String deadLetterTopic() {
    return deadLetterTopic;
  }

  int maxRedeliveries() {
    return maxRedeliveries;
  }

  Map<String, String> metadata() {
    return metadata;
  }

  StreamOptions stream() {
    return stream;
  }
}
