// Package governance benchmarks the per-call cost of the governance chain
// (governance.Chain) against golang.org/x/time/rate and sony/gobreaker.
//
// Run (see docs/benchmarks.md, section "Governance chain"):
//
//	go test ./bench/governance -run '^$' -bench . -benchmem -cpu 2 -count 6
//
// "serial" sub-benchmarks run on one goroutine; "parallel" ones use
// b.RunParallel with GOMAXPROCS goroutines, so with -cpu 2 their ns/op is
// wall time per call with two cores calling at once.
package governance
