package dev.outrig.sdk;

/** The consistency a state operation asks for. Not choosing one leaves it to the store. */
public enum Consistency {
  /** Eventual consistency: a read may miss a very recent write. */
  EVENTUAL,
  /** Strong consistency: a read sees every write acknowledged before it. */
  STRONG;

  dev.outrig.api.runtime.v1.Consistency toProto() {
    return this == EVENTUAL
        ? dev.outrig.api.runtime.v1.Consistency.CONSISTENCY_EVENTUAL
        : dev.outrig.api.runtime.v1.Consistency.CONSISTENCY_STRONG;
  }
}
