package dev.outrig.sdk;

import dev.outrig.api.runtime.v1.BulkPublishResponse;
import dev.outrig.api.runtime.v1.GetBulkStateResponse;
import dev.outrig.api.runtime.v1.GetMetadataResponse;
import dev.outrig.api.runtime.v1.GetStateResponse;
import dev.outrig.api.runtime.v1.InvokeBindingResponse;
import java.util.List;

/** Converts wire responses into the SDK's value types. */
final class Responses {
  private Responses() {}

  static StateItem stateItem(String key, GetStateResponse r) {
    return new StateItem(
        key,
        r.getData().toByteArray(),
        r.getEtag(),
        r.getFound(),
        r.getMetadataMap(),
        r.getContentType());
  }

  static List<BulkStateItem> bulkItems(GetBulkStateResponse r) {
    return r.getItemsList().stream()
        .map(
            it ->
                new BulkStateItem(
                    new StateItem(
                        it.getKey(),
                        it.getData().toByteArray(),
                        it.getEtag(),
                        it.getFound(),
                        it.getMetadataMap(),
                        it.getContentType()),
                    it.getError()))
        .toList();
  }

  static BulkPublishResult bulkPublish(BulkPublishResponse r) {
    return new BulkPublishResult(
        r.getFailedEntriesList().stream()
            .map(f -> new BulkPublishResult.Failure(f.getEntryId(), f.getError()))
            .toList());
  }

  static InvokeResponse invoke(dev.outrig.api.runtime.v1.InvokeResponse r) {
    return new InvokeResponse(r.getData().toByteArray(), r.getContentType(), r.getMetadataMap());
  }

  static BindingResponse binding(InvokeBindingResponse r) {
    return new BindingResponse(r.getData().toByteArray(), r.getMetadataMap());
  }

  static AppMetadata metadata(GetMetadataResponse r) {
    return new AppMetadata(
        r.getAppId(),
        r.getRuntimeVersion(),
        r.getMode(),
        r.getConfigVersion(),
        r.getComponentsList().stream()
            .map(
                c ->
                    new AppMetadata.ComponentInfo(
                        c.getName(),
                        c.getType(),
                        c.getVersion(),
                        List.copyOf(c.getCapabilitiesList()),
                        c.getStatus(),
                        c.getError()))
            .toList(),
        r.getSubscriptionsList().stream()
            .map(
                s ->
                    new AppMetadata.SubscriptionInfo(
                        s.getPubsubName(),
                        s.getTopic(),
                        s.getKind(),
                        s.getDeadLetterTopic(),
                        List.copyOf(s.getRoutesList())))
            .toList(),
        r.getPoliciesList().stream()
            .map(
                p ->
                    new AppMetadata.PolicyInfo(
                        p.getName(),
                        List.copyOf(p.getTargetsList()),
                        List.copyOf(p.getPoliciesList())))
            .toList());
  }
}
