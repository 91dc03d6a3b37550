package dev.outrig.sdk;

import java.util.Map;

/**
 * The answer of an output binding operation ({@link OutrigClient#invokeBinding}).
 *
 * @param data the binding's answer (not copied; do not modify)
 * @param metadata binding-specific metadata (unmodifiable)
 */
public record BindingResponse(byte[] data, Map<String, String> metadata) {}
