package config

import (
	"strings"

	configv1 "github.com/outrig/outrig/api/gen/outrig/config/v1"
	"google.golang.org/protobuf/proto"
)

// RedactedValue replaces secret metadata values in Redacted copies.
const RedactedValue = "<redacted>"

// secretWords mark metadata names whose values are secret. Names are
// compared lower-cased with '-' and '_' removed.
var secretWords = []string{
	"password", "secret", "token", "credential", "accesskey", "apikey",
	"privatekey", "saslpassword", "connectionstring",
}

// Redacted returns a copy of c, for /config_dump and logs, in which the
// values of secretKeyRef items and of items whose name looks secret (it
// contains password, secret, token, credential, accesskey, apikey,
// privatekey, saslpassword or connectionstring, ignoring case, '-' and '_')
// are replaced by "<redacted>". c is not modified; nil gives nil.
func Redacted(c *configv1.Component) *configv1.Component {
	if c == nil {
		return nil
	}
	out := proto.Clone(c).(*configv1.Component)
	for _, m := range out.GetMetadata() {
		if m != nil && (m.GetSecretKeyRef() != nil || secretName(m.GetName())) {
			m.Value = RedactedValue
		}
	}
	return out
}

func secretName(name string) bool {
	n := strings.NewReplacer("-", "", "_", "").Replace(strings.ToLower(name))
	for _, w := range secretWords {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}
