package dev.outrig.sdk;

import com.google.protobuf.ByteString;
import dev.outrig.api.runtime.v1.EventAck;
import dev.outrig.api.runtime.v1.InvocationReply;
import dev.outrig.api.runtime.v1.ServeInitial;
import dev.outrig.api.runtime.v1.ServeRequest;
import dev.outrig.api.runtime.v1.ServeResponse;
import dev.outrig.api.runtime.v1.SubscribeBindingInitial;
import dev.outrig.api.runtime.v1.SubscribeBindingRequest;
import dev.outrig.api.runtime.v1.SubscribeBindingResponse;
import dev.outrig.api.runtime.v1.SubscribeInitial;
import dev.outrig.api.runtime.v1.SubscribeRequest;
import dev.outrig.api.runtime.v1.SubscribeResponse;
import io.grpc.Status;
import java.util.Map;
import java.util.TreeSet;
import java.util.function.Supplier;

/** The three stream protocols run by {@link StreamLoop}: Subscribe, SubscribeBinding, Serve. */
final class StreamProtocols {
  private static final System.Logger LOG = System.getLogger("dev.outrig.sdk");

  private StreamProtocols() {}

  static StreamLoop.Protocol<SubscribeRequest, SubscribeResponse> subscribe(
      String pubsub, String topic, TopicEventHandler handler, SubscribeOptions o) {
    SubscribeRequest initial =
        SubscribeRequest.newBuilder()
            .setInitial(
                SubscribeInitial.newBuilder()
                    .setPubsubName(pubsub)
                    .setTopic(topic)
                    .putAllMetadata(o.metadata())
                    .setDeadLetterTopic(o.deadLetterTopic())
                    .setMaxRedeliveries(o.maxRedeliveries()))
            .build();
    return new StreamLoop.Protocol<>() {
      @Override
      public SubscribeRequest initial() {
        return initial;
      }

      @Override
      public boolean isReady(SubscribeResponse m) {
        return m.hasReady();
      }

      @Override
      public Supplier<SubscribeRequest> work(SubscribeResponse m) {
        if (!m.hasEvent()) {
          return null; // a message from a newer sidecar
        }
        var ev = m.getEvent();
        TopicEvent e =
            new TopicEvent(
                ev.getId(),
                ev.getSource(),
                ev.getType(),
                ev.getSpecVersion(),
                ev.getDataContentType(),
                ev.getData().toByteArray(),
                ev.getTopic(),
                ev.getPubsubName(),
                ev.getPath(),
                ev.getMetadataMap(),
                ev.getAttempt());
        return () -> {
          EventStatus s = verdict("Subscribe", e.id(), () -> handler.handle(e));
          return SubscribeRequest.newBuilder().setAck(ack(e.id(), s)).build();
        };
      }
    };
  }

  static StreamLoop.Protocol<SubscribeBindingRequest, SubscribeBindingResponse> binding(
      String name, BindingEventHandler handler) {
    SubscribeBindingRequest initial =
        SubscribeBindingRequest.newBuilder()
            .setInitial(SubscribeBindingInitial.newBuilder().setName(name))
            .build();
    return new StreamLoop.Protocol<>() {
      @Override
      public SubscribeBindingRequest initial() {
        return initial;
      }

      @Override
      public boolean isReady(SubscribeBindingResponse m) {
        return m.hasReady();
      }

      @Override
      public Supplier<SubscribeBindingRequest> work(SubscribeBindingResponse m) {
        if (!m.hasEvent()) {
          return null;
        }
        var ev = m.getEvent();
        BindingEvent e =
            new BindingEvent(
                ev.getId(), ev.getName(), ev.getData().toByteArray(), ev.getMetadataMap());
        return () -> {
          EventStatus s = verdict("SubscribeBinding", e.id(), () -> handler.handle(e));
          return SubscribeBindingRequest.newBuilder().setAck(ack(e.id(), s)).build();
        };
      }
    };
  }

  static StreamLoop.Protocol<ServeRequest, ServeResponse> serve(
      Map<String, InvocationHandler> handlers) {
    ServeRequest initial =
        ServeRequest.newBuilder()
            .setInitial(ServeInitial.newBuilder().addAllMethods(new TreeSet<>(handlers.keySet())))
            .build();
    return new StreamLoop.Protocol<>() {
      @Override
      public ServeRequest initial() {
        return initial;
      }

      @Override
      public boolean isReady(ServeResponse m) {
        return m.hasReady();
      }

      @Override
      public Supplier<ServeRequest> work(ServeResponse m) {
        if (!m.hasInvocation()) {
          return null;
        }
        var inv = m.getInvocation();
        return () -> ServeRequest.newBuilder().setReply(dispatch(handlers, inv)).build();
      }
    };
  }

  /** Runs the handler of inv and builds the reply with the same id. */
  static InvocationReply dispatch(
      Map<String, InvocationHandler> handlers, dev.outrig.api.runtime.v1.Invocation inv) {
    var reply = InvocationReply.newBuilder().setId(inv.getId());
    InvocationHandler h = handlers.get(inv.getMethod());
    if (h == null) {
      return reply
          .setCode(Status.Code.NOT_FOUND.value())
          .setMessage("method \"" + inv.getMethod() + "\" is not served")
          .build();
    }
    Invocation in =
        new Invocation(
            inv.getMethod(),
            inv.getData().toByteArray(),
            inv.getContentType(),
            inv.getMetadataMap(),
            inv.getCallerAppId(),
            inv.getHttpVerb());
    try {
      Reply out = h.handle(in);
      if (out != null) {
        reply
            .setData(ByteString.copyFrom(out.data()))
            .setContentType(out.contentType())
            .putAllMetadata(out.metadata());
      }
      return reply.build();
    } catch (Throwable t) {
      if (t instanceof Error && !(t instanceof AssertionError)) {
        LOG.log(System.Logger.Level.ERROR, "outrig Serve: handler of " + inv.getMethod(), t);
      }
      if (t instanceof InterruptedException) {
        Thread.currentThread().interrupt();
      }
      Status st = ErrorMapping.toStatus(t);
      return InvocationReply.newBuilder()
          .setId(inv.getId())
          .setCode(st.getCode().value())
          .setMessage(st.getDescription() == null ? "" : st.getDescription())
          .build();
    }
  }

  /** What the SDK's handler callable does for an event. */
  @FunctionalInterface
  interface EventCall {
    EventStatus call() throws Exception;
  }

  /** Runs an event handler; an exception or null is RETRY. */
  static EventStatus verdict(String op, String id, EventCall c) {
    try {
      EventStatus s = c.call();
      return s == null ? EventStatus.RETRY : s;
    } catch (Throwable t) {
      if (t instanceof InterruptedException) {
        Thread.currentThread().interrupt();
      }
      LOG.log(
          System.Logger.Level.WARNING,
          "outrig " + op + ": handler of event " + id + " threw; the event will be retried",
          t);
      return EventStatus.RETRY;
    }
  }

  private static EventAck ack(String id, EventStatus s) {
    return EventAck.newBuilder().setId(id).setStatus(s.toProto()).build();
  }
}
