package dev.outrig.sdk;

/**
 * One item of {@link OutrigClient#deleteBulkState}.
 *
 * @param key the key, non-empty
 * @param options the item's options (ETag, concurrency, ...), never null
 */
public record DeleteItem(String key, StateOptions options) {
  /**
   * Checks the components.
   *
   * @param key the key
   * @param options the options; null means {@link StateOptions#NONE}
   */
  public DeleteItem {
    options = options == null ? StateOptions.NONE : options;
  }

  /**
   * An item without options.
   *
   * @param key the key
   * @return the item
   */
  public static DeleteItem of(String key) {
    return new DeleteItem(key, StateOptions.NONE);
  }
}
