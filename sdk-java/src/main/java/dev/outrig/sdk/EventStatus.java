package dev.outrig.sdk;

/**
 * A handler's verdict on one event, sent back to the sidecar as the event's ack. A handler that
 * throws, or returns null, is answered {@link #RETRY}, so an event is never lost by mistake.
 */
public enum EventStatus {
  /** Processed; not delivered again. */
  SUCCESS,
  /** Deliver again, up to the subscription's bound, then dead-letter. */
  RETRY,
  /** Discard: neither redelivered nor dead-lettered. */
  DROP;

  dev.outrig.api.runtime.v1.EventStatus toProto() {
    switch (this) {
      case SUCCESS:
        return dev.outrig.api.runtime.v1.EventStatus.EVENT_STATUS_SUCCESS;
      case DROP:
        return dev.outrig.api.runtime.v1.EventStatus.EVENT_STATUS_DROP;
      default:
        return dev.outrig.api.runtime.v1.EventStatus.EVENT_STATUS_RETRY;
    }
  }
}
