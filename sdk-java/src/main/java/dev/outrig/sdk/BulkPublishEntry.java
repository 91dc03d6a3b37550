package dev.outrig.sdk;

import java.util.Map;

/**
 * One event of {@link OutrigClient#bulkPublish}.
 *
 * @param id identifies the entry in {@link BulkPublishResult#failed()}; unique within the call;
 *     "" means its index in the call ("0", "1", ...)
 * @param data the event data
 * @param contentType the data's content type ("" for the sidecar's default)
 * @param metadata per-entry metadata (copied)
 */
public record BulkPublishEntry(
    String id, byte[] data, String contentType, Map<String, String> metadata) {
  /**
   * Normalises null components to empty ones.
   *
   * @param id the id
   * @param data the data
   * @param contentType the content type
   * @param metadata the metadata
   */
  public BulkPublishEntry {
    id = id == null ? "" : id;
    data = data == null ? new byte[0] : data;
    contentType = contentType == null ? "" : contentType;
    metadata = metadata == null ? Map.of() : Map.copyOf(metadata);
  }

  /**
   * An entry with data only; its id is its index in the call.
   *
   * @param data the event data
   * @return the entry
   */
  public static BulkPublishEntry of(byte[] data) {
    return new BulkPublishEntry("", data, "", Map.of());
  }
}
