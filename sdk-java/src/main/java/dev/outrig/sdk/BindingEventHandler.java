package dev.outrig.sdk;

/**
 * Handles one input binding event; see {@link TopicEventHandler} for threading and failures.
 */
@FunctionalInterface
public interface BindingEventHandler {
  /**
   * Handles the event.
   *
   * @param event the event
   * @return the verdict
   * @throws Exception any failure, answered RETRY
   */
  EventStatus handle(BindingEvent event) throws Exception;
}
