package dev.outrig.sdk;

import java.nio.charset.StandardCharsets;
import java.util.Map;

/**
 * The callee's answer to {@link OutrigClient#invoke}.
 *
 * @param data the answer's payload (not copied; do not modify)
 * @param contentType the payload's content type
 * @param metadata metadata returned by the callee (unmodifiable)
 */
public record InvokeResponse(byte[] data, String contentType, Map<String, String> metadata) {
  /**
   * The payload decoded as UTF-8.
   *
   * @return the payload as a string
   */
  public String dataAsString() {
    return new String(data, StandardCharsets.UTF_8);
  }
}
