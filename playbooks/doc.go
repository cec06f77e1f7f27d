// Package playbooks holds the ordered, idempotent host procedures of clusterctl
// (up, reset, observe, image load) and their parallel fan-out over SSH.
//
// Every step gathers facts, compares them with what it would write, and only
// acts on a difference, so re-running a playbook changes nothing and says so.
// The rendering of files (containerd config, CNI conflist, units, sysctls) and
// the evaluation of facts are pure functions; the I/O goes through Host, a
// tiny interface implemented by remote.Client (and by fakes in unit tests).
package playbooks
