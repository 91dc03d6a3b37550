package dev.outrig.sdk;

import java.nio.charset.StandardCharsets;
import java.util.Map;

/**
 * A handler's successful answer to an {@link Invocation}. A handler returning null sends an
 * empty answer.
 *
 * @param data the answer's payload
 * @param contentType its content type ("" when none)
 * @param metadata metadata returned to the caller
 */
public record Reply(byte[] data, String contentType, Map<String, String> metadata) {
  /**
   * Normalises null components to empty ones.
   *
   * @param data the payload
   * @param contentType the content type
   * @param metadata the metadata (copied)
   */
  public Reply {
    data = data == null ? new byte[0] : data;
    contentType = contentType == null ? "" : contentType;
    metadata = metadata == null ? Map.of() : Map.copyOf(metadata);
  }

  /**
   * A reply with a payload only.
   *
   * @param data the payload
   * @return the reply
   */
  public static Reply of(byte[] data) {
    return new Reply(data, "", Map.of());
  }

  /**
   * A reply with a UTF-8 text payload and a content type.
   *
   * @param text the payload
   * @param contentType e.g. application/json
   * @return the reply
   */
  public static Reply of(String text, String contentType) {
    return new Reply(text.getBytes(StandardCharsets.UTF_8), contentType, Map.of());
  }
}
