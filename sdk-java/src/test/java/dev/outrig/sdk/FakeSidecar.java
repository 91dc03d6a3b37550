package dev.outrig.sdk;

import dev.outrig.api.runtime.v1.RuntimeGrpc;
import io.grpc.BindableService;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;

/**
 * An in-process gRPC server playing the sidecar for the unit tests: each test gives the
 * Runtime implementation it needs. It records the {@code outrig-app-id} header of every call
 * and can be stopped and started again under the same name (a sidecar restart).
 */
final class FakeSidecar implements AutoCloseable {
  private final String name = InProcessServerBuilder.generateName();
  private final BindableService impl;
  final List<String> appIdHeaders = new CopyOnWriteArrayList<>();
  final List<String> methods = new CopyOnWriteArrayList<>();
  private Server server;

  FakeSidecar(RuntimeGrpc.RuntimeImplBase impl) {
    this.impl = impl;
    start();
  }

  void start() {
    ServerInterceptor capture =
        new ServerInterceptor() {
          @Override
          public <Q, R> ServerCall.Listener<Q> interceptCall(
              ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
            String id = headers.get(GrpcTransport.APP_ID_HEADER);
            appIdHeaders.add(id == null ? "<none>" : id);
            methods.add(call.getMethodDescriptor().getBareMethodName());
            return next.startCall(call, headers);
          }
        };
    try {
      server =
          InProcessServerBuilder.forName(name)
              .addService(ServerInterceptors.intercept(impl, capture))
              .executor(java.util.concurrent.Executors.newCachedThreadPool())
              .build()
              .start();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Stops the server abruptly: open streams fail with UNAVAILABLE. */
  void stop() throws InterruptedException {
    server.shutdownNow();
    server.awaitTermination(5, TimeUnit.SECONDS);
  }

  ManagedChannel channel() {
    return InProcessChannelBuilder.forName(name).build();
  }

  OutrigClientBuilder clientBuilder() {
    return OutrigClient.builder().env(k -> null).channel(channel());
  }

  @Override
  public void close() throws InterruptedException {
    stop();
  }
}
