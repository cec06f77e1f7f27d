// Package cronsched parses CronJob schedules and computes their due times
// exactly as Kubernetes does, without importing Kubernetes: both the CLI's
// CronJob controller and agentlet (which fires CronJobs while no CLI runs)
// use it, so that both sides agree on every scheduled time.
//
// Parsing follows the API server's validation and the CronJob controller:
//
//   - spec.schedule goes through github.com/robfig/cron/v3's standard parser
//     (cron.ParseStandard): five fields (minute hour day-of-month month
//     day-of-week, with names, ranges, steps, "?" and "*") or a descriptor
//     (@yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly,
//     @every <duration>).
//   - A schedule containing "TZ" (the TZ= and CRON_TZ= prefixes) is refused,
//     as the API server refuses it on create since Kubernetes 1.27: the time
//     zone belongs in spec.timeZone.
//   - spec.timeZone must be nil or an explicit IANA name; "" and "Local" are
//     refused with the API server's messages. Without a time zone the
//     schedule is read in UTC (Kubernetes reads it in kube-controller-manager's
//     local zone, which is UTC in every standard deployment; clusterctl cannot
//     depend on the zone of whichever laptop or host runs it).
//
// Loading a time zone reads the time zone database, which is I/O, so Parse
// takes the loader as an argument (time.LoadLocation at the edge, or a fake
// in tests) and the package stays pure: no clock, no I/O, times passed in.
//
// Schedule.MostRecent is the controller's mostRecentScheduleTime: the latest
// scheduled time that should have started since the last run (or the
// creation), the number of missed start times, and whether there were more
// than 100 of them, when Kubernetes records the TooManyMissedTimes warning.
package cronsched
