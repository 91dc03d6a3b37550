package dev.outrig.sdk;

/**
 * Handles one event of a subscription and says what to do with it.
 *
 * <p>Calls run on the client's handler executor, one at a time in delivery order unless {@link
 * StreamOptions.Builder#maxConcurrentHandlers(int)} allows more. An exception or a null
 * result is answered {@link EventStatus#RETRY}. A verdict returned after the subscription's
 * stream ended is lost and the sidecar delivers the event again (delivery is at least once).
 */
@FunctionalInterface
public interface TopicEventHandler {
  /**
   * Handles the event.
   *
   * @param event the event
   * @return the verdict
   * @throws Exception any failure, answered RETRY
   */
  EventStatus handle(TopicEvent event) throws Exception;
}
