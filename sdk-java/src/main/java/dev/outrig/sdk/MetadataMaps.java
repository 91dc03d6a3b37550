package dev.outrig.sdk;

import java.util.Map;

/** Checks for the metadata maps of the option builders: no null keys or values. */
final class MetadataMaps {
  private MetadataMaps() {}

  static void put(String where, Map<String, String> into, String key, String value) {
    if (key == null || key.isEmpty()) {
      throw ErrorMapping.invalidArgument(where, "metadata key", "is null or empty");
    }
    if (value == null) {
      throw ErrorMapping.invalidArgument(where, "metadata[" + key + "]", "is null");
    }
    into.put(key, value);
  }

  static void putAll(String where, Map<String, String> into, Map<String, String> md) {
    if (md == null) {
      throw ErrorMapping.invalidArgument(where, "metadata", "is null");
    }
    md.forEach((k, v) -> put(where, into, k, v));
  }
}
