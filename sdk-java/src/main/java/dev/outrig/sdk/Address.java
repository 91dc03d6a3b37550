package dev.outrig.sdk;

/**
 * Parses a sidecar address into a gRPC target. Accepted forms:
 *
 * <pre>
 *   unix:///abs/path      Unix socket, absolute path
 *   unix:relative/path    Unix socket, path relative to the working directory
 *   /abs/path             shorthand for unix:///abs/path
 *   host:port             TCP (host may be an IP, [IPv6] or a name; ":port" means 127.0.0.1)
 *   dns:///host:port      TCP, resolved by gRPC's DNS resolver
 * </pre>
 */
final class Address {
  private Address() {}

  /**
   * Returns the gRPC target for addr.
   *
   * @throws InvalidArgumentException naming the address and what is wrong with it
   */
  static String toTarget(String addr) {
    if (addr == null || addr.isEmpty() || !addr.strip().equals(addr)) {
      throw bad(addr, "must be non-empty and have no surrounding spaces");
    }
    if (addr.startsWith("/")) {
      return "unix://" + addr;
    }
    int colon = addr.indexOf(':');
    String scheme = colon < 0 ? "" : addr.substring(0, colon);
    String rest = colon < 0 ? "" : addr.substring(colon + 1);
    switch (scheme) {
      case "unix":
        if (rest.startsWith("//")) {
          if (!rest.startsWith("///") || rest.length() == 3) {
            throw bad(addr, "want unix:///absolute/path or unix:relative/path");
          }
          return addr;
        }
        if (rest.isEmpty()) {
          throw bad(addr, "missing socket path");
        }
        return addr;
      case "unix-abstract":
        throw bad(addr, "abstract Unix sockets are not supported by the Java SDK");
      case "dns":
        String hp = rest;
        if (rest.startsWith("//")) {
          int slash = rest.indexOf('/', 2);
          if (slash < 0) {
            throw bad(addr, "want dns:///host:port");
          }
          hp = rest.substring(slash + 1);
        }
        checkHostPort(addr, hp);
        return addr;
      default:
        break;
    }
    if (rest.startsWith("//")) {
      throw bad(addr, "unsupported scheme " + scheme + " (want unix, dns or host:port)");
    }
    String hostPort = checkHostPort(addr, addr);
    return "dns:///" + hostPort;
  }

  /** Checks host:port and returns it with an empty host replaced by 127.0.0.1. */
  private static String checkHostPort(String addr, String hp) {
    int i = hp.lastIndexOf(':');
    if (i < 0) {
      throw bad(addr, "want unix:///path, host:port or dns:///host:port");
    }
    String host = hp.substring(0, i);
    String port = hp.substring(i + 1);
    int n;
    try {
      n = Integer.parseInt(port);
    } catch (NumberFormatException e) {
      n = -1;
    }
    if (n < 1 || n > 65535) {
      throw bad(addr, "port must be a number from 1 to 65535");
    }
    if (host.startsWith("[") != host.endsWith("]")) {
      throw bad(addr, "unbalanced brackets around the IPv6 host");
    }
    if (!host.startsWith("[") && host.contains(":")) {
      throw bad(addr, "an IPv6 host must be written in brackets, e.g. [::1]:port");
    }
    if (host.isEmpty()) {
      host = "127.0.0.1";
    }
    return host + ":" + port;
  }

  private static InvalidArgumentException bad(String addr, String why) {
    return new InvalidArgumentException(
        "NewClient", "address \"" + addr + "\": " + why, null, null);
  }
}
