package dev.outrig.sdk;

import java.nio.charset.StandardCharsets;
import java.util.Map;

/**
 * One call addressed to this application, received through {@link OutrigClient#serve}.
 *
 * @param method the method called
 * @param data the request payload (not copied; do not modify)
 * @param contentType the payload's content type
 * @param metadata the caller's call metadata (headers; unmodifiable)
 * @param callerAppId the calling application's id
 * @param httpVerb the HTTP verb the caller asked for ("" when none)
 */
public record Invocation(
    String method,
    byte[] data,
    String contentType,
    Map<String, String> metadata,
    String callerAppId,
    String httpVerb) {

  /**
   * The payload decoded as UTF-8.
   *
   * @return the payload as a string
   */
  public String dataAsString() {
    return new String(data, StandardCharsets.UTF_8);
  }
}
