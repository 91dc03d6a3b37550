package dev.outrig.sdk;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

class AddressTest {
  @ParameterizedTest
  @CsvSource({
    "unix:///tmp/outrig.sock, unix:///tmp/outrig.sock",
    "/tmp/outrig.sock, unix:///tmp/outrig.sock",
    "unix:rel/outrig.sock, unix:rel/outrig.sock",
    "127.0.0.1:50001, dns:///127.0.0.1:50001",
    "localhost:50001, dns:///localhost:50001",
    ":50001, dns:///127.0.0.1:50001",
    "[::1]:50001, dns:///[::1]:50001",
    "dns:///sidecar:50001, dns:///sidecar:50001",
  })
  void acceptedForms(String in, String target) {
    assertEquals(target, Address.toTarget(in));
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "",
        " 127.0.0.1:1",
        "unix://host/path",
        "unix:///",
        "unix:",
        "unix-abstract:name",
        "127.0.0.1",
        "127.0.0.1:0",
        "127.0.0.1:65536",
        "127.0.0.1:http",
        "::1:50001",
        "http://x:1",
        "dns://x"
      })
  void rejectedFormsNameTheAddress(String in) {
    InvalidArgumentException e =
        assertThrows(InvalidArgumentException.class, () -> Address.toTarget(in));
    assertTrue(e.getMessage().contains("\"" + in + "\""), e.getMessage());
  }
}
