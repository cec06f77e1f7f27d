// Package pods is agentlet's pod runtime: it converges the pods of a
// NodeSpec through CRI and reports their Kubernetes-style status, with
// nobody connected — kubelet's pod workers, for one node.
//
// The decisions are pure and table-tested: Plan takes the desired pods,
// what the runtime reports (Observed), agentlet's bookkeeping (Book: restart
// counts, back-off, events), probe results and the time, and returns the
// actions per pod (create sandbox, start, kill, remove, delete);
// buildStatus and Phase compute the status the same way; BackoffPolicy is
// the crash-loop back-off; SelectImages picks images to garbage-collect;
// SandboxConfig and ContainerConfig translate a PodSpec to CRI.
//
// Manager is the edge around them: each Sync observes the runtime (two list
// calls plus details of what changed), plans, and hands every pod's actions
// to a worker goroutine (one per pod at a time, at most MaxParallel at
// once), so a slow pull or a 30-second grace period never stalls the
// daemon's heartbeat. Probes run on their own timers (agentlet/probe).
// Bookkeeping is persisted per pod in <PodsDir>/<uid>/state.json, so a
// restarted agentlet adopts the running pods — they belong to containerd's
// shims — with their restart counts and back-off.
//
// Host files: <PodsDir>/<uid>/ holds volumes/empty-dir/<name> (tmpfs for
// medium Memory), volumes/files/<name> (written atomically through a
// ..data symlink; tmpfs for secrets), containers/<name>/<attempt> (the
// termination message file), etc-hosts and state.json; CRI log files go to
// <LogsDir>/<namespace>_<name>_<uid>/<container>/<restartCount>.log.
package pods
