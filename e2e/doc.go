// Package e2e holds end-to-end tests that run the built clusterctl binary
// against the local lab (root, Linux) or, with CLUSTERCTL_E2E_INVENTORY set,
// against any inventory such as the Vagrant VMs. It has no non-test code.
package e2e
