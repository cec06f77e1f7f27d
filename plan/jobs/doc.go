// Package jobs is the cluster loop's Job and CronJob controllers: a pure
// function of the stored Jobs, CronJobs and pods (with the nodes' observed
// pod status), a seed and the time, returning controller.Changes.
//
// ReconcileJobs follows kube-controller-manager's job, cronjob and
// ttl-after-finished controllers (Kubernetes 1.31+ behaviour) and the
// garbage collector for their dependents:
//
// Jobs
//   - completions and parallelism: active pods = min(parallelism,
//     completions - succeeded); without completions, parallelism pods run
//     until one succeeds, and the Job completes when nothing runs any more.
//   - pods are named <job>-<5 chars> (Indexed: <job>-<index>-<5 chars>), with
//     the labels batch.kubernetes.io/controller-uid, batch.kubernetes.io/
//     job-name, controller-uid and job-name (added to the Job's pod template
//     and selector when the Job is first stored), a controller owner
//     reference, and the tracking finalizer batch.kubernetes.io/job-tracking.
//     Suffixes and uids derive from JobInput.Seed, the owner and the time.
//   - counting is Kubernetes' finalizer tracking: a finished pod that still
//     carries the finalizer is counted into status.succeeded or
//     status.failed and stored without it, in the same pass. Finished pods
//     stay (for logs and describe) until their Job is deleted.
//   - backoffLimit: failed pods, and with restartPolicy OnFailure the
//     container restarts of running pods, count towards it; past it the Job
//     fails with reason BackoffLimitExceeded and its active pods are
//     deleted (and counted as failed). Replacement pods wait for the pod
//     failure back-off (10 s, doubling, at most 10 min).
//   - activeDeadlineSeconds: reason DeadlineExceeded, active pods deleted.
//   - Indexed completion mode: one pod per pending index, the lowest first,
//     with annotation and label batch.kubernetes.io/job-completion-index,
//     hostname <job>-<index> and JOB_COMPLETION_INDEX in every container;
//     status.completedIndexes ("0-2,4"). backoffLimitPerIndex,
//     maxFailedIndexes (status.failedIndexes, reasons FailedIndexes and
//     MaxFailedIndexesExceeded) and successPolicy (reason SuccessPolicy).
//   - podFailurePolicy: FailJob (reason PodFailurePolicy), FailIndex, Ignore
//     and Count on exit codes and pod conditions; with it only pods in phase
//     Failed are replaced.
//   - suspend: active pods deleted (not counted), condition Suspended, and
//     on resume the start time is reset.
//   - conditions as since Kubernetes 1.31: FailureTarget then Failed, and
//     SuccessCriteriaMet then Complete (reason CompletionsReached). A pod
//     deleted by the pass is gone from the next pass's view, so the terminal
//     condition follows in the same pass.
//   - ttlSecondsAfterFinished: the finished Job and its pods are deleted.
//   - spec.managedBy other than kubernetes.io/job-controller: left alone.
//
// CronJobs
//   - the Job for the most recent due time (cronsched.Schedule.MostRecent)
//     is named JobNameForSchedule and annotated with
//     batch.kubernetes.io/cronjob-scheduled-timestamp. A Job that exists
//     under that name is never created again, whoever created it.
//   - concurrencyPolicy Allow, Forbid (skip while a run is active) and
//     Replace (delete the active runs first); suspend;
//     startingDeadlineSeconds; the TooManyMissedTimes warning.
//   - successfulJobsHistoryLimit and failedJobsHistoryLimit delete the
//     oldest finished Jobs with their pods.
//   - status active, lastScheduleTime and lastSuccessfulTime.
//   - node-fired runs (noderuns.go): a CronJob bound to a node
//     (CronJobNodeAnnotation) is fired by that node's agentlet, not by the
//     pass; AdoptNodeRuns turns the runs the nodes report into the Jobs and
//     pods the controller would have made, with the node's names and uids,
//     and RunPodTemplates gives the pod templates the node makes runs from.
//
// What the API server would do on create is done here too, once, to
// objects that arrive without a uid: uid, creationTimestamp, the API
// defaults (backoffLimit 6, completions and parallelism 1, NonIndexed,
// concurrencyPolicy Allow, history limits 3 and 1, ...) and the Job's
// generated selector.
//
// JobStatusSummary and CronJobStatusSummary give the columns of kubectl get.
package jobs
