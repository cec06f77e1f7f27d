package cronsched

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// LoadLocation resolves an IANA time zone name, as time.LoadLocation does.
type LoadLocation func(name string) (*time.Location, error)

// ManyMissedThreshold is the number of missed start times above which
// Kubernetes warns instead of silently catching up.
const ManyMissedThreshold = 100

// TooManyMissedMessage is the message of Kubernetes' TooManyMissedTimes
// warning event.
const TooManyMissedMessage = "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew"

// ErrNoTimeZoneDatabase is returned by Parse for a time zone other than UTC
// when no loader is given.
var ErrNoTimeZoneDatabase = errors.New("no time zone database")

// Schedule is a parsed CronJob schedule in its time zone.
type Schedule struct {
	spec     string
	timeZone string // "" when spec.timeZone is nil
	loc      *time.Location
	sched    cron.Schedule
}

// Parse parses a CronJob's spec.schedule and spec.timeZone (nil for none) as
// the API server validates them and the CronJob controller reads them. load
// resolves timeZone; it may be nil when timeZone is nil or "UTC".
func Parse(schedule string, timeZone *string, load LoadLocation) (Schedule, error) {
	if strings.Contains(schedule, "TZ") {
		return Schedule{}, fmt.Errorf("parse schedule %q: cannot use TZ or CRON_TZ in schedule, use timeZone field instead", schedule)
	}
	loc := time.UTC
	tz := ""
	if timeZone != nil {
		tz = *timeZone
		var err error
		if loc, err = LoadTimeZone(tz, load); err != nil {
			return Schedule{}, fmt.Errorf("parse time zone %q: %w", tz, err)
		}
	}
	sched, err := cron.ParseStandard(schedule)
	if err != nil {
		return Schedule{}, fmt.Errorf("parse schedule %q: %w", schedule, err)
	}
	// The parser leaves a field schedule in time.Local, which would make
	// Next depend on the zone of the machine (or of the time passed in).
	if spec, ok := sched.(*cron.SpecSchedule); ok {
		spec.Location = loc
	}
	return Schedule{spec: schedule, timeZone: tz, loc: loc, sched: sched}, nil
}

// ValidateTimeZone checks a spec.timeZone name the way the API server does
// before loading it: non-empty, not "Local", and made of path elements of 1
// to 14 characters from [A-Za-z0-9._+-] that are not "." or ".." and do not
// start with "-".
func ValidateTimeZone(name string) error {
	if name == "" {
		return errors.New("timeZone must be nil or non-empty string")
	}
	for _, part := range strings.Split(name, "/") {
		if part == "." || part == ".." || strings.HasPrefix(part, "-") || !validTimeZonePart(part) {
			return fmt.Errorf("unknown time zone %s", name)
		}
	}
	if strings.EqualFold(name, "Local") {
		return errors.New("timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones")
	}
	return nil
}

func validTimeZonePart(part string) bool {
	if len(part) < 1 || len(part) > 14 {
		return false
	}
	for _, r := range part {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9',
			r == '.', r == '-', r == '_', r == '+':
		default:
			return false
		}
	}
	return true
}

// LoadTimeZone validates a spec.timeZone name (ValidateTimeZone) and loads
// it with load, which may be nil for "UTC".
func LoadTimeZone(name string, load LoadLocation) (*time.Location, error) {
	if err := ValidateTimeZone(name); err != nil {
		return nil, err
	}
	if name == "UTC" {
		return time.UTC, nil
	}
	if load == nil {
		return nil, ErrNoTimeZoneDatabase
	}
	loc, err := load(name)
	if err != nil {
		return nil, err
	}
	if loc == nil {
		return nil, fmt.Errorf("unknown time zone %s", name)
	}
	return loc, nil
}

// String returns the schedule as written.
func (s Schedule) String() string { return s.spec }

// TimeZone returns spec.timeZone, "" when it was nil.
func (s Schedule) TimeZone() string { return s.timeZone }

// Location returns the time zone the schedule is read in (UTC without
// spec.timeZone).
func (s Schedule) Location() *time.Location {
	if s.loc == nil {
		return time.UTC
	}
	return s.loc
}

// Next returns the first scheduled time after after, in after's location,
// or the zero time if there is none within five years (a schedule such as
// "0 0 30 2 *").
func (s Schedule) Next(after time.Time) time.Time {
	if s.sched == nil {
		return time.Time{}
	}
	return s.sched.Next(after)
}

// Due is what MostRecent found.
type Due struct {
	// Earliest is where the search started: the last schedule time, or the
	// creation time, moved up to now - startingDeadlineSeconds.
	Earliest time.Time
	// MostRecent is the latest scheduled time in (Earliest, now], the one
	// a Job should be created for; zero when nothing is due.
	MostRecent time.Time
	// Missed is the number of scheduled times in (Earliest, now]: exact
	// when 0 or 1, otherwise Kubernetes' estimate from the interval between
	// the first two times (exact for regular schedules).
	Missed int64
	// TooMany reports Missed > ManyMissedThreshold: Kubernetes then records
	// a Warning event TooManyMissedTimes (TooManyMissedMessage) and still
	// starts the most recent run.
	TooMany bool
}

// MostRecent is Kubernetes' mostRecentScheduleTime for a CronJob created at
// created, last scheduled at lastScheduled (zero if never), at now, with
// spec.startingDeadlineSeconds (nil for none). It fails for a schedule that
// parses but cannot fire, such as "0 0 30 2 *".
func (s Schedule) MostRecent(lastScheduled, created, now time.Time, startingDeadlineSeconds *int64) (Due, error) {
	earliest := created
	if !lastScheduled.IsZero() {
		earliest = lastScheduled
	}
	if startingDeadlineSeconds != nil {
		// The controller is not going to schedule anything before this.
		deadline := now.Add(-time.Duration(*startingDeadlineSeconds) * time.Second)
		if deadline.After(earliest) {
			earliest = deadline
		}
	}
	due := Due{Earliest: earliest}

	t1 := s.Next(earliest)
	t2 := s.Next(t1)
	if now.Before(t1) {
		return due, nil
	}
	if now.Before(t2) {
		due.MostRecent, due.Missed = t1, 1
		return due, nil
	}
	// A schedule like "59 23 31 2 *" parses but never fires: Next returns
	// the zero time and the interval is 0.
	interval := int64(t2.Sub(t1).Round(time.Second).Seconds())
	if interval < 1 {
		return due, errors.New("compute most recent schedule time: time difference between two schedules is less than 1 second")
	}
	// As Kubernetes: estimate how many intervals fit since t1, jump to just
	// before the estimated last one and walk forward from there, so that a
	// CronJob that missed decades does not iterate over every run.
	elapsed := int64(now.Sub(t1).Seconds())
	missed := elapsed/interval + 1
	potentialEarliest := t1.Add(time.Duration((missed-2)*interval) * time.Second)
	var mostRecent time.Time
	for t := s.Next(potentialEarliest); !t.IsZero() && !t.After(now); t = s.Next(t) {
		mostRecent = t
	}
	due.MostRecent = mostRecent
	due.Missed = missed
	due.TooMany = missed > ManyMissedThreshold
	return due, nil
}
