package dev.outrig.sdk;

import java.util.Map;

/**
 * One item read from a state store. A missing key is not an error: {@code found} is false and
 * the value is empty.
 *
 * @param key the key read
 * @param value the value (empty when not found); the array is not copied, do not modify it
 * @param etag the item's current entity tag ("" when the store has none); pass it to {@link
 *     StateOptions.Builder#etag(String)} for a conditional write
 * @param found whether the key exists
 * @param metadata metadata the store returned (unmodifiable)
 * @param contentType the value's content type ("" when unknown)
 */
public record StateItem(
    String key,
    byte[] value,
    String etag,
    boolean found,
    Map<String, String> metadata,
    String contentType) {

  /**
   * The value decoded as UTF-8.
   *
   * @return the value as a string ("" when not found)
   */
  public String valueAsString() {
    return new String(value, java.nio.charset.StandardCharsets.UTF_8);
  }
}
