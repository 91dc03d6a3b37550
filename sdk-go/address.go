package outrig

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// DefaultAddress is the sidecar address used when neither WithAddress nor
// OUTRIG_ADDRESS says otherwise.
const DefaultAddress = "unix:///tmp/outrig.sock"

// Environment variables read by NewClient when the matching option is absent.
const (
	EnvAddress = "OUTRIG_ADDRESS"
	EnvAppID   = "OUTRIG_APP_ID"
)

// parseAddress checks a sidecar address and returns the gRPC target for it.
// Accepted forms:
//
//	unix:///abs/path      Unix socket, absolute path
//	unix:relative/path    Unix socket, path relative to the working directory
//	/abs/path             shorthand for unix:///abs/path
//	unix-abstract:name    Linux abstract socket
//	host:port             TCP (host may be an IP, [IPv6] or a name)
//	dns:///host:port      TCP, resolved by gRPC's DNS resolver
//	passthrough:///host:port
func parseAddress(addr string) (string, error) {
	bad := func(why string) error {
		return fmt.Errorf("outrig: address %q: %s: %w", addr, why, ErrInvalidArgument)
	}
	if strings.TrimSpace(addr) != addr || addr == "" {
		return "", bad("must be non-empty and have no surrounding spaces")
	}
	if strings.HasPrefix(addr, "/") {
		return "unix://" + addr, nil
	}
	scheme, rest, hasScheme := strings.Cut(addr, ":")
	switch {
	case hasScheme && scheme == "unix":
		if strings.HasPrefix(rest, "//") {
			// unix://authority/path: gRPC allows only an empty authority.
			if !strings.HasPrefix(rest, "///") || len(rest) == 3 {
				return "", bad("want unix:///absolute/path or unix:relative/path")
			}
			return addr, nil
		}
		if rest == "" {
			return "", bad("missing socket path")
		}
		return addr, nil
	case hasScheme && scheme == "unix-abstract":
		if rest == "" {
			return "", bad("missing socket name")
		}
		return addr, nil
	case hasScheme && (scheme == "dns" || scheme == "passthrough"):
		// dns:[//authority/]host[:port], passthrough:///host:port
		hostport := rest
		if strings.HasPrefix(rest, "//") {
			i := strings.Index(rest[2:], "/")
			if i < 0 {
				return "", bad("want " + scheme + ":///host:port")
			}
			hostport = rest[2+i+1:]
		}
		if hostport == "" {
			return "", bad("missing host")
		}
		return addr, nil
	case hasScheme && strings.HasPrefix(rest, "//"):
		return "", bad("unsupported scheme " + scheme + " (want unix, unix-abstract, dns, passthrough or host:port)")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", bad("want unix:///path, host:port or dns:///host:port")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", bad("port must be a number from 1 to 65535")
	}
	if host == "" {
		// ":50001" means the local host, as net.Listen reads it.
		host = "127.0.0.1"
	}
	// passthrough skips the DNS resolver: the address is dialled as is (a
	// name is still resolved by the dialer), which is what a local sidecar
	// address wants.
	return "passthrough:///" + net.JoinHostPort(host, port), nil
}
