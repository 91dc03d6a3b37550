package dev.outrig.sdk;

import java.util.LinkedHashMap;
import java.util.Map;

/** Options of {@link OutrigClient#invoke}. Immutable and reusable. */
public final class InvokeOptions {
  /** No options. */
  public static final InvokeOptions NONE = builder().build();

  private final String contentType;
  private final String httpVerb;
  private final String hashKey;
  private final Map<String, String> metadata;

  private InvokeOptions(Builder b) {
    this.contentType = b.contentType;
    this.httpVerb = b.httpVerb;
    this.hashKey = b.hashKey;
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

  /** Builds {@link InvokeOptions}. Not thread-safe. */
  public static final class Builder {
    private String contentType = "";
    private String httpVerb = "";
    private String hashKey = "";
    private final Map<String, String> metadata = new LinkedHashMap<>();

    private Builder() {}

    /**
     * Sets the content type of the request data.
     *
     * @param contentType e.g. application/json
     * @return this builder
     */
    public Builder contentType(String contentType) {
      this.contentType = contentType == null ? "" : contentType;
      return this;
    }

    /**
     * Sets the HTTP verb used when the callee is reached through an HTTP app port (default
     * POST). Ignored for gRPC and Serve callees.
     *
     * @param verb e.g. GET
     * @return this builder
     */
    public Builder httpVerb(String verb) {
      this.httpVerb = verb == null ? "" : verb;
      return this;
    }

    /**
     * Sets the key of hash-based load balancing (HRW, ring hash): calls with the same key reach
     * the same callee instance.
     *
     * @param key the hash key
     * @return this builder
     */
    public Builder hashKey(String key) {
      this.hashKey = key == null ? "" : key;
      return this;
    }

    /**
     * Adds call metadata (headers) forwarded to the callee; later keys win.
     *
     * @param md the metadata, copied
     * @return this builder
     */
    public Builder metadata(Map<String, String> md) {
      MetadataMaps.putAll("InvokeOptions", metadata, md);
      return this;
    }

    /**
     * Adds one call metadata entry.
     *
     * @param key the key
     * @param value the value
     * @return this builder
     */
    public Builder metadata(String key, String value) {
      MetadataMaps.put("InvokeOptions", metadata, key, value);
      return this;
    }

    /**
     * Builds the immutable options.
     *
     * @return the options
     */
    public InvokeOptions build() {
      return new InvokeOptions(this);
    }
  }

  String contentType() {
    return contentType;
  }

  String httpVerb() {
    return httpVerb;
  }

  String hashKey() {
    return hashKey;
  }

  Map<String, String> metadata() {
    return metadata;
  }
}
