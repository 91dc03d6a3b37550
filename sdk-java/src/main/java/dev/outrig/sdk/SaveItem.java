package dev.outrig.sdk;

import java.util.Objects;

/**
 * One item of {@link OutrigClient#saveBulkState}.
 *
 * @param key the key, non-empty
 * @param value the value (0 bytes is a valid value); not copied until the call
 * @param options the item's options (ETag, TTL, ...), never null
 */
public record SaveItem(String key, byte[] value, StateOptions options) {
  /**
   * Checks the components.
   *
   * @param key the key
   * @param value the value
   * @param options the options; null means {@link StateOptions#NONE}
   */
  public SaveItem {
    options = options == null ? StateOptions.NONE : options;
    value = Objects.requireNonNullElse(value, new byte[0]);
  }

  /**
   * An item without options.
   *
   * @param key the key
   * @param value the value
   * @return the item
   */
  public static SaveItem of(String key, byte[] value) {
    return new SaveItem(key, value, StateOptions.NONE);
  }
}
