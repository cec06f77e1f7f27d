// Package inventory is clusterctl's cluster state on the workstation: the
// schema of the inventory YAML file, its strict parser and validator, and the
// edge that loads, locks and saves it.
//
// The package has a pure core and a small edge:
//
//   - Parse (parse.go, validate.go) turns bytes into a validated, defaulted
//     *Inventory. It does no I/O and never reads the clock, and it reports
//     every problem at once as FILE:LINE: field.path: message.
//   - Marshal (marshal.go) renders an inventory back to YAML. Everything the
//     user wrote is kept as parsed (comments, key order, quoting); only the
//     state: subtree, which clusterctl owns, is regenerated, with its host
//     keys sorted so that git diffs stay small.
//   - Load, Save, Lock and Update (load.go, save.go, lock.go) are the edge:
//     reading the file, writing it atomically (temp file, fsync, rename) with
//     its mode kept, and serialising read-modify-write cycles between
//     processes with an exclusive flock on PATH.lock.
//
// Field paths in problems use the YAML names and 0-based sequence indexes,
// e.g. hosts[1].address or hosts[0].labels["topology.kubernetes.io/zone"].
package inventory
