package dev.outrig.sdk;

/**
 * One step of {@link OutrigClient#executeStateTransaction}, made by {@link #upsert} or {@link
 * #delete}. Immutable.
 */
public final class StateOperation {
  /** What a step does. */
  enum Kind {
    UPSERT,
    DELETE
  }

  private final Kind kind;
  private final String key;
  private final byte[] value;
  private final StateOptions options;

  private StateOperation(Kind kind, String key, byte[] value, StateOptions options) {
    this.kind = kind;
    this.key = key;
    this.value = value;
    this.options = options == null ? StateOptions.NONE : options;
  }

  /**
   * Writes value under key within the transaction.
   *
   * @param key the key, non-empty
   * @param value the value
   * @return the step
   */
  public static StateOperation upsert(String key, byte[] value) {
    return upsert(key, value, StateOptions.NONE);
  }

  /**
   * Writes value under key within the transaction, with options as {@link
   * OutrigClient#saveState}.
   *
   * @param key the key, non-empty
   * @param value the value
   * @param options the options (ETag, TTL, ...)
   * @return the step
   */
  public static StateOperation upsert(String key, byte[] value, StateOptions options) {
    return new StateOperation(Kind.UPSERT, key, value == null ? new byte[0] : value, options);
  }

  /**
   * Deletes key within the transaction.
   *
   * @param key the key, non-empty
   * @return the step
   */
  public static StateOperation delete(String key) {
    return delete(key, StateOptions.NONE);
  }

  /**
   * Deletes key within the transaction, with options as {@link OutrigClient#deleteState}.
   *
   * @param key the key, non-empty
   * @param options the options (ETag, ...)
   * @return the step
   */
  public static StateOperation delete(String key, StateOptions options) {
    return new StateOperation(Kind.DELETE, key, null, options);
  }

  Kind kind() {
    return kind;
  }

  String key() {
    return key;
  }

  byte[] value() {
    return value;
  }

  StateOptions options() {
    return options;
  }
}
