// Package cron fires the CronJobs bound to this node on time, with nobody
// connected: the node-side half of Kubernetes' CronJob controller. The CLI
// puts each CronJob in exactly one node's spec (nodeapi.CronJobSpec), adopts
// the runs the node reports (nodeapi.CronJobStatus) as Jobs with their pods,
// and those pods then come back in the node's spec.
//
// Plan is pure (the time is passed in) and table-tested. Each daemon tick it
// takes the held state, the spec's CronJobs and pods and the pods' last
// statuses, and returns the new state and the run pods to run alongside the
// spec's:
//
//   - Schedules are parsed by plan/cronsched exactly as the CLI parses them
//     (robfig/cron's standard parser, TZ and CRON_TZ refused, timeZone
//     loaded with the injected loader); the time due is Kubernetes'
//     mostRecentScheduleTime since the later of the node's own last
//     schedule time and the CLI's (so a CronJob moved between nodes never
//     fires a time twice), or since the CronJob's creation. More than 100
//     missed times: only the most recent runs (event TooManyMissedTimes).
//   - suspend: nothing fires. startingDeadlineSeconds passed: the time is
//     missed (event MissSchedule) and stays unmet, as in Kubernetes.
//   - concurrencyPolicy: Allow fires; Forbid skips (event JobAlreadyActive)
//     while a run of the CronJob is active — a local run with a pod not
//     finished, or a Job the CLI lists as active with a pod in this node's
//     spec that has not finished — and, as Kubernetes, leaves the time unmet:
//     it fires late once nothing is active, if still the most recent time
//     and within the starting deadline; Replace stops the active runs first
//     (local runs are dropped, spec pods of active Jobs are held back from
//     the pod runtime until the CLI drops them) and fires.
//   - A run is the Job name Kubernetes gives it (<cronjob>-<scheduled unix
//     minutes>) and PodsPerRun pods instantiated from the CronJob's lowered
//     templates (nodeapi.InstantiateCronPod). The Job uid and the pod names
//     (<job>-<5 chars>, Indexed <job>-<i>-<5 chars>) and uids derive from
//     the CronJob's uid and the scheduled time, so they are the same
//     whenever the time is fired.
//   - A run is forgotten when the spec holds one of its pods (the CLI adopted
//     it: the spec pod takes over, same UID, nothing restarts), when the
//     CLI's lastScheduleTime has reached its scheduled time but none of its
//     pods is in the spec (the CLI adopted it earlier and has deleted it),
//     when Replace stops it, beyond the history limits once finished, and
//     OrphanGrace after its CronJob left the spec (deleted, or moved to
//     another node while this one was not heard from); its pods are then
//     stopped by the pod runtime like any pod that left the spec.
//
// The state (each CronJob's last schedule time and recent events, the held
// runs with their pod specs, the held-back spec pods) is what makes a run
// happen exactly once: the daemon saves it (Save: 0600, atomic rename)
// before it hands a new run's pods to the pod runtime, and starts nothing
// new when the save fails. A crash before the save loses nothing (the time
// is still due and fires again with the same names); after it, the run's
// pods start at the next tick.
package cron
