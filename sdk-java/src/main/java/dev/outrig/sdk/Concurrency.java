package dev.outrig.sdk;

/**
 * The concurrency mode of a state write or delete. Not choosing one means first-write-wins
 * when an ETag is given and last-write-wins otherwise.
 */
public enum Concurrency {
  /** The write needs the current ETag; a stale one fails with {@link EtagMismatchException}. */
  FIRST_WRITE,
  /** The ETag is ignored; the last write wins. */
  LAST_WRITE;

  dev.outrig.api.runtime.v1.StateOptions.Concurrency toProto() {
    return this == FIRST_WRITE
        ? dev.outrig.api.runtime.v1.StateOptions.Concurrency.CONCURRENCY_FIRST_WRITE
        : dev.outrig.api.runtime.v1.StateOptions.Concurrency.CONCURRENCY_LAST_WRITE;
  }
}
