package dev.outrig.sdk;

import java.util.Optional;

/**
 * One result of {@link OutrigClient#getBulkState}: the item, or the error of reading this key
 * (the other keys are unaffected).
 *
 * @param item the item read (its {@code found} is false when the read failed)
 * @param error the error text of this key, or "" when it was read
 */
public record BulkStateItem(StateItem item, String error) {
  /**
   * The error of this key, if reading it failed.
   *
   * @return the error text, or empty
   */
  public Optional<String> failure() {
    return error.isEmpty() ? Optional.empty() : Optional.of(error);
  }
}
