package dev.outrig.sdk;

import java.util.List;

/**
 * What the sidecar serves for the calling app ({@link OutrigClient#getMetadata}).
 *
 * @param appId the app id the sidecar knows this app by
 * @param runtimeVersion the sidecar's version
 * @param mode "pod" (one app per sidecar) or "host" (several apps)
 * @param configVersion the version of the configuration snapshot in force
 * @param components the components loaded
 * @param subscriptions the app's subscriptions
 * @param policies the governance policies in force
 */
public record AppMetadata(
    String appId,
    String runtimeVersion,
    String mode,
    String configVersion,
    List<ComponentInfo> components,
    List<SubscriptionInfo> subscriptions,
    List<PolicyInfo> policies) {

  /**
   * One loaded component.
   *
   * @param name the component name
   * @param type e.g. state.redis
   * @param version e.g. v1
   * @param capabilities e.g. ETAG, TRANSACTIONAL, TTL
   * @param status READY, or FAILED when the last Init failed (the previous version serves)
   * @param error why it failed, "" when ready
   */
  public record ComponentInfo(
      String name,
      String type,
      String version,
      List<String> capabilities,
      String status,
      String error) {}

  /**
   * One subscription of the app.
   *
   * @param pubsubName the pubsub component
   * @param topic the topic
   * @param kind declarative or streaming
   * @param deadLetterTopic where exhausted events go, "" when none
   * @param routes the routes of a declarative subscription
   */
  public record SubscriptionInfo(
      String pubsubName, String topic, String kind, String deadLetterTopic, List<String> routes) {}

  /**
   * One governance policy in force.
   *
   * @param name the policy name
   * @param targets kind/name/method targets, e.g. invoke/orders/Create
   * @param policies what it combines, e.g. rateLimit, circuitBreaker
   */
  public record PolicyInfo(String name, List<String> targets, List<String> policies) {}
}
