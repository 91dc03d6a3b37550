package dev.outrig.sdk;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Options of {@link OutrigClient#publish} and {@link OutrigClient#bulkPublish}. Immutable and
 * reusable. For {@code bulkPublish} the options apply to the whole request and {@code
 * contentType} is rejected (set it per {@link BulkPublishEntry}).
 */
public final class PublishOptions {
  /** No options: content type application/json (the sidecar's default), no metadata. */
  public static final PublishOptions NONE = builder().build();

  private final String contentType;
  private final Map<String, String> metadata;

  private PublishOptions(Builder b) {
    this.contentType = b.contentType;
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

  /** Builds {@link PublishOptions}. Not thread-safe. */
  public static final class Builder {
    private String contentType = "";
    private final Map<String, String> metadata = new LinkedHashMap<>();

    private Builder() {}

    /**
     * Sets the content type of the event data (default application/json). {@code
     * application/cloudevents+json} means the data already is a CloudEvent.
     *
     * @param contentType the content type
     * @return this builder
     */
    public Builder contentType(String contentType) {
      this.contentType = contentType == null ? "" : contentType;
      return this;
    }

    /**
     * Routes the event by key (Kafka partition, RocketMQ sharding key), through the {@code
     * partitionKey} metadata key.
     *
     * @param key the partition key
     * @return this builder
     */
    public Builder partitionKey(String key) {
      MetadataMaps.put("PublishOptions", metadata, "partitionKey", key);
      return this;
    }

    /**
     * Publishes the data as is, without the CloudEvents envelope the sidecar adds otherwise
     * (metadata {@code rawPayload=true}).
     *
     * @return this builder
     */
    public Builder rawPayload() {
      metadata.put("rawPayload", "true");
      return this;
    }

    /**
     * Adds component metadata and CloudEvent overrides (e.g. {@code cloudevent.type}); later
     * keys win.
     *
     * @param md the metadata, copied
     * @return this builder
     */
    public Builder metadata(Map<String, String> md) {
      MetadataMaps.putAll("PublishOptions", metadata, md);
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
      MetadataMaps.put("PublishOptions", metadata, key, value);
      return this;
    }

    /**
     * Builds the immutable options.
     *
     * @return the options
     */
    public PublishOptions build() {
      return new PublishOptions(this);
    }
  }

  String contentType() {
    return contentType;
  }

  Map<String, String> metadata() {
    return metadata;
  }
}
