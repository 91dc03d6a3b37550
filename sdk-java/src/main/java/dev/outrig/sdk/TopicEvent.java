package dev.outrig.sdk;

import java.nio.charset.StandardCharsets;
import java.util.Map;

/**
 * A CloudEvents 1.0 event delivered to a {@link TopicEventHandler}.
 *
 * @param id the CloudEvent id (also the id acked)
 * @param source the CloudEvent source
 * @param type the CloudEvent type
 * @param specVersion the CloudEvents spec version
 * @param dataContentType the content type of data
 * @param data the event data (not copied; do not modify)
 * @param topic the topic
 * @param pubsubName the pubsub component
 * @param path the route chosen by a declarative Subscription's rules ("" when none)
 * @param metadata other CloudEvent attributes and transport metadata (unmodifiable)
 * @param attempt the delivery attempt, starting at 1
 */
public record TopicEvent(
    String id,
    String source,
    String type,
    String specVersion,
    String dataContentType,
    byte[] data,
    String topic,
    String pubsubName,
    String path,
    Map<String, String> metadata,
    int attempt) {

  /**
   * The data decoded as UTF-8.
   *
   * @return the data as a string
   */
  public String dataAsString() {
    return new String(data, StandardCharsets.UTF_8);
  }
}
