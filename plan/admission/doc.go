// Package admission enforces LimitRanges and ResourceQuotas the way the API
// server's LimitRanger and ResourceQuota admission plugins do, as pure
// functions of Kubernetes objects: clusterctl has no API server, so
// `clusterctl apply` and the controllers of the cluster loop ask this
// package before they store an object.
//
// Two callers, one type. An Admission is built from every stored object
// (New); it enforces the LimitRanges and ResourceQuotas among them and
// counts what it admits, so that the admissions of one pass see each
// other:
//
//   - apply: Apply(objects of the manifests). LimitRanges and quotas in the
//     manifests take effect first. Pods get LimitRange defaults in place
//     and are checked against the LimitRanges and quotas; claims against
//     LimitRanges and quotas; workloads (Deployments, ReplicaSets,
//     ReplicationControllers, StatefulSets, DaemonSets, Jobs, CronJobs)
//     have one pod of their template checked, and count like every other
//     object toward count/<resource> quotas.
//   - controllers: Admit(pod) before a pod a controller made is stored. On
//     violations the controller skips the pod and records a Warning event
//     FailedCreate "Error creating: " + Violations.Forbidden(), as a
//     ReplicaSet does on "exceeded quota".
//
// Admit(quotas, current, changes) is the quota check on its own, and
// Status and Columns give a quota's used and hard amounts for get and
// describe (status.used as the resource quota controller computes it).
//
// What follows Kubernetes:
//
//   - LimitRanger: defaults per container and init container (a missing
//     limit from default, a missing request from defaultRequest, which the
//     API server defaults from default and then min; the defaults of a
//     stored LimitRange are applied again here, so either form works), the
//     kubernetes.io/limit-ranger annotation, then min, max and
//     maxLimitRequestRatio for Container items per container and for Pod
//     items on the pod's effective requests and limits, min and max
//     storage for PersistentVolumeClaim items. Quantities compare exactly.
//   - ResourceQuota: usage per object as the quota evaluators compute it
//     (Usage: pods not in a terminal phase, effective pod requests and
//     limits with init containers, sidecars and overhead, services and
//     node ports, claims and storage per class, object counts), the
//     must-specify rule for cpu and memory, the delta charged for a
//     replaced object, and the messages "exceeded quota: NAME, requested:
//     ..., used: ..., limited: ..." and "failed quota: NAME: must specify
//     ...".
//
// Differences, on purpose:
//
//   - Every violation of every object is reported, where the API server
//     stops at the first plugin that refuses. LimitRange messages name the
//     container and the LimitRange ("container app: cpu limit 2 exceeds
//     LimitRange default/limits max 1") instead of Kubernetes' "maximum cpu
//     usage per Container is 1, but limit is 2".
//   - Pod templates are checked, never changed: Kubernetes applies
//     LimitRange defaults to pods only, and writing them into a template
//     would change its hash (a rollout whenever a LimitRange changes).
//     Controller-made pods get the defaults from Admit. Callers who want
//     templates defaulted anyway can use DefaultPodSpec.
//   - A template that can never produce an admissible pod (a container
//     without a request a quota requires, or one pod above a quota's hard
//     amount) is refused at apply; Kubernetes accepts the workload and
//     fails each pod with FailedCreate.
//   - Several LimitRanges in a namespace are applied in name order (the
//     API server's order is that of its cache). Quota scopes are not
//     supported (the manifest decoder refuses them), and a terminating pod
//     counts until it is gone (clusterctl removes deleted pods from the
//     store, so there are no lingering terminating pods).
//
// The package is pure: no I/O, no clock.
package admission
