// Package plan is clusterctl's pure core: Desired + Observed + now → Plan.
//
// Everything here is a deterministic function of its arguments: no I/O, no
// network, no clock (the current time is passed in), no randomness. The
// controllers, the scheduler's inputs, the allocators and the endpoint
// computation live here so that they can be tested exhaustively with table
// and property tests and so that `--dry-run` shows exactly what would be done.
// purity_test.go enforces this for plan and the other pure packages.
package plan
