// Package governance applies traffic policies to every call the sidecar
// makes or serves — service invocation, state operations, publishes,
// bindings — with one implementation for every kind of call and transport.
//
// # Compilation and lookup
//
// Compile turns the Policy resources in force into an immutable *Table.
// Table.Lookup(kind, name, method, caller) returns the *Chain for a call:
// the chain of the single most specific policy whose targets match, or a
// shared no-op chain. Lookups are cached per key; after the first lookup
// of a key, Lookup is one hash-map read and allocates nothing.
//
// Precedence, when several policies match a call (see PolicyTarget):
//
//  1. a target with an exact method beats one with a glob method (an empty
//     method is the glob "*");
//  2. then an exact name beats a glob name;
//  3. then a target naming the caller beats one without;
//  4. then the policy whose name sorts first wins.
//
// Only the winning policy applies; policies are not merged. Globs use
// path.Match syntax, except that "*" alone matches everything, '/'
// included. The caller, when given, is an exact app id.
//
// # State
//
// A policy's stateful parts — rate limiter, breaker, bulkhead, adaptive
// limit, retry budget, drop statistics — exist once per (policy, kind, name,
// method): a glob target gives every concrete method it matches its own
// limiter, and every caller of that method shares it. When Compile is given
// the previous table, a policy whose content (the proto, and the Redis
// client of a cluster rate limit) did not change keeps its chains and their
// state, so a config push of another policy resets nothing; a changed policy
// starts with fresh state. Calls in flight hold the *Chain they started with
// and finish under it.
//
// # A call
//
// Chain.Do runs an operation under the whole chain:
//
//	timeout (per call: one deadline for all attempts and backoffs)
//	  retry (attempts, backoff, retryable codes, retry budget)
//	    per attempt: random drop → rate limit → circuit breaker → bulkhead → adaptive limit → op
//
// Chain.Enter / Token.Exit are the same per-attempt admission for callers
// that run the operation themselves (streaming, or a transport that keeps
// its own retry loop); they allocate nothing when the call is admitted.
// Rejections wrap the errkind sentinels: rate limited and bulkhead full are
// errkind.ErrResourceExhausted; dropped, breaker open and adaptive limit are
// errkind.ErrUnavailable (breaker and rate limit rejections carry a
// retry-after hint); a policy timeout is errkind.ErrDeadlineExceeded.
// Rejections by the chain itself are never retried by it.
//
// Classify decides whether an operation's error counts against the backend
// (breakers, adaptive limits, throttling, outlier ejection).
package governance
