package dev.outrig.sdk;

import java.util.Map;

/**
 * One event of an input binding, delivered to a {@link BindingEventHandler}.
 *
 * @param id the event id (acked)
 * @param name the binding component name
 * @param data the event data (not copied; do not modify)
 * @param metadata binding-specific metadata (unmodifiable)
 */
public record BindingEvent(String id, String name, byte[] data, Map<String, String> metadata) {}
