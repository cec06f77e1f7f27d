// Package workloads holds clusterctl's workload controllers: Deployment,
// ReplicaSet, ReplicationController, DaemonSet and StatefulSet, ported from
// kube-controller-manager as pure functions of (stored objects, observed
// pod status, nodes, now, seed).
//
// Reconcile runs one pass and returns controller.Changes: objects to put
// (created or replaced whole, status included) and to delete, and the
// events Kubernetes would record. The caller applies them to its store and
// may call Reconcile again in the same run until nothing changes, so that
// a cascade settles without waiting: a new Deployment gets its ReplicaSet
// and the ReplicaSet its pods in one pass, their status in the next two.
// Whatever waits on pods (readiness, minReadySeconds, termination) waits
// for a later invocation with fresh observations. On output that was
// applied, Reconcile returns no changes unless the observations or the time
// moved.
//
// Within a pass, work goes in this order, each step seeing the changes of
// the ones before: the garbage collector (dependents of deleted owners),
// Deployments, ReplicaSets (including those a Deployment just created or
// scaled), ReplicationControllers, DaemonSets, StatefulSets. Objects are
// visited in namespace/name order, so the output is deterministic; new
// names (pod suffixes) and UIDs are derived from Input.Seed and the object.
//
// What follows Kubernetes, by controller:
//
//   - Deployment: ReplicaSets named <deployment>-<pod-template-hash> with
//     Kubernetes' hash (ComputeHash, byte-compatible with
//     controller.ComputeHash, collisionCount included), the
//     pod-template-hash label on the ReplicaSet, its selector, template and
//     pods, the revision, revision-history, desired-replicas and
//     max-replicas annotations, adoption and release of ReplicaSets by
//     selector; RollingUpdate (maxSurge rounded up, maxUnavailable rounded
//     down, both resolved against spec.replicas, unhealthy old replicas
//     removed first), Recreate (old ReplicaSets to 0, then wait until their
//     pods are gone), proportional scaling during a rollout and while
//     paused, spec.paused, progressDeadlineSeconds (Progressing=False,
//     ProgressDeadlineExceeded), the Available condition, revisionHistoryLimit
//     and the status fields, terminatingReplicas included.
//   - ReplicaSet and ReplicationController: pods <owner>-<5 characters> from
//     Kubernetes' alphabet, adoption and release by selector, scale-down in
//     Kubernetes' order (sortPodsForDeletion), status.
//   - DaemonSet: one pod per eligible node (nodeSelector, required node
//     affinity, taints against the pod's tolerations plus the ones
//     Kubernetes adds to daemon pods), pods pinned with Kubernetes'
//     metadata.name node affinity, controller-revision-hash, RollingUpdate
//     with maxUnavailable or maxSurge, OnDelete, failed pods replaced,
//     pods on nodes that became ineligible deleted, ControllerRevisions and
//     their history limit, status.
//   - StatefulSet: pods <set>-<ordinal> (spec.ordinals.start honoured) with
//     hostname, subdomain, the pod-name, pod-index and
//     controller-revision-hash labels; OrderedReady and Parallel;
//     PersistentVolumeClaims <template>-<set>-<ordinal> created before the
//     pod; the retention policy through owner references and the garbage
//     collector; RollingUpdate from the highest ordinal down to the
//     partition within maxUnavailable (on by default since it went beta),
//     OnDelete; ControllerRevisions (name and hash byte-compatible) with
//     rollback by renumbering and the history limit; status.
//
// Helpers for the CLI mirror kubectl: DeploymentRolloutStatus,
// DaemonSetRolloutStatus and StatefulSetRolloutStatus (rollout status),
// DeploymentHistory (rollout history), RollbackDeployment (rollout undo),
// RestartDeployment, RestartDaemonSet and RestartStatefulSet (rollout
// restart).
//
// Differences from Kubernetes, on purpose:
//
//   - Pods are bound by clusterctl's scheduler, except DaemonSet pods,
//     which are created with spec.nodeName set (as well as Kubernetes'
//     node-name affinity).
//   - Finished pods (Failed or Succeeded) of ReplicaSets and
//     ReplicationControllers are deleted at once and replaced; Kubernetes
//     leaves them to the pod garbage collector. Daemon pods of nodes that
//     no longer exist are deleted by the DaemonSet (the pod garbage
//     collector's job in Kubernetes).
//   - The garbage collector is background cascading only, and only judges
//     owners of the kinds in Input: an object any of whose owners is of
//     another kind is left alone. Input must therefore hold every stored
//     object of its kinds, ControllerRevisions included, and every node
//     (an unreachable one with Ready false): daemon pods of nodes missing
//     from Input.Nodes are deleted.
//   - There are no expectations, burst limits or slow-start batches: every
//     pass sees the state the previous one left, and creates or deletes
//     everything it decided at once. A DaemonSet's rolling update waits for
//     the next pass when the pass created or deleted pods (Kubernetes waits
//     for its expectations).
//   - When a Deployment's new ReplicaSet gets new annotations, the
//     Deployment's revision annotation is updated in the same pass
//     (Kubernetes does it one sync later).
//   - Node conditions come as Node.Ready and Node.Unschedulable and are
//     turned into the taints the node lifecycle controller would set
//     (not-ready NoSchedule and NoExecute, unschedulable NoSchedule).
//     Toleration operators Lt and Gt never match.
//   - Failed daemon pods are deleted without Kubernetes' back-off.
//   - Spec defaults (replicas 1, RollingUpdate 25%/25%, history limit 10,
//     progress deadline 600s, DaemonSet maxUnavailable 1, StatefulSet
//     OrderedReady and partition 0) are applied when reading, never written
//     back to a spec. Pod templates are used as stored: the pod defaults of
//     the API server are the manifest decoder's job, and they change the
//     hashes.
//   - Timestamps written are Now at second precision, as the API server
//     stores them. New objects get generation 1 and, pods and claims, phase
//     Pending.
//
// The package is pure: no I/O, no clock, no randomness.
package workloads
