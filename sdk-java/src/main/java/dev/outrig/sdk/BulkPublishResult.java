package dev.outrig.sdk;

import java.util.List;

/**
 * The outcome of {@link OutrigClient#bulkPublish}: which entries were not published (the
 * others were). When the call as a whole fails, {@code bulkPublish} throws instead and nothing
 * is known to be published.
 *
 * @param failed the entries not published, in the sidecar's order; empty when all succeeded
 */
public record BulkPublishResult(List<Failure> failed) {
  /**
   * Copies the list.
   *
   * @param failed the failed entries
   */
  public BulkPublishResult {
    failed = List.copyOf(failed);
  }

  /**
   * Whether every entry was published.
   *
   * @return true when {@link #failed()} is empty
   */
  public boolean allPublished() {
    return failed.isEmpty();
  }

  /**
   * An entry that was not published and why.
   *
   * @param id the entry's id (its index when it had none)
   * @param error the reason
   */
  public record Failure(String id, String error) {}
}
