// Package probe runs the liveness, readiness and startup probes of
// agentlet's containers, Kubernetes-style, on their own timers.
//
// One goroutine (Manager.Run) owns every probe's schedule and state; it
// hands due probes to at most MaxConcurrent runner goroutines and folds
// their results in with the pure threshold logic of Tracker. The pod
// manager tells it which containers run (Update) and reads the results
// (Results); a Runner does the actual exec, HTTP GET or TCP connect.
package probe

import (
	"time"

	"github.com/clusterctl/clusterctl/nodeapi"
)

// Kind is the kind of a probe.
type Kind int

// Probe kinds.
const (
	Liveness Kind = iota + 1
	Readiness
	Startup
)

func (k Kind) String() string {
	switch k {
	case Liveness:
		return "Liveness"
	case Readiness:
		return "Readiness"
	case Startup:
		return "Startup"
	default:
		return "Unknown"
	}
}

// Result is a probe's current verdict.
type Result int

// Results. A probe starts Unknown; readiness counts Unknown as not ready,
// liveness as alive, startup as not yet started.
const (
	Unknown Result = iota
	Success
	Failure
)

func (r Result) String() string {
	switch r {
	case Success:
		return "Success"
	case Failure:
		return "Failure"
	default:
		return "Unknown"
	}
}

// Defaults for unset probe fields (Kubernetes').
const (
	DefaultPeriod           = 10 * time.Second
	DefaultTimeout          = time.Second
	DefaultSuccessThreshold = 1
	DefaultFailureThreshold = 3
)

// Params are a probe's timing and thresholds with defaults applied.
type Params struct {
	InitialDelay     time.Duration
	Period           time.Duration
	Timeout          time.Duration
	SuccessThreshold int32
	FailureThreshold int32
}

// ParamsOf applies the defaults to p. Liveness and startup probes need one
// success only (as in Kubernetes).
func ParamsOf(p nodeapi.Probe, kind Kind) Params {
	out := Params{
		InitialDelay:     time.Duration(p.InitialDelaySeconds) * time.Second,
		Period:           time.Duration(p.PeriodSeconds) * time.Second,
		Timeout:          time.Duration(p.TimeoutSeconds) * time.Second,
		SuccessThreshold: p.SuccessThreshold,
		FailureThreshold: p.FailureThreshold,
	}
	if out.Period <= 0 {
		out.Period = DefaultPeriod
	}
	if out.Timeout <= 0 {
		out.Timeout = DefaultTimeout
	}
	if out.SuccessThreshold <= 0 || kind != Readiness {
		out.SuccessThreshold = DefaultSuccessThreshold
	}
	if out.FailureThreshold <= 0 {
		out.FailureThreshold = DefaultFailureThreshold
	}
	return out
}

// Initial is the result a probe of kind has before it ran.
func Initial(kind Kind) Result {
	if kind == Liveness {
		return Success
	}
	return Unknown
}

// Tracker turns single probe outcomes into a result with thresholds: the
// result flips to Success after SuccessThreshold consecutive successes and
// to Failure after FailureThreshold consecutive failures.
type Tracker struct {
	Result    Result
	successes int32
	failures  int32
}

// NewTracker starts a tracker for a probe of kind.
func NewTracker(kind Kind) Tracker { return Tracker{Result: Initial(kind)} }

// Observe folds one outcome in and reports whether the result changed.
func (t *Tracker) Observe(ok bool, p Params) bool {
	before := t.Result
	if ok {
		t.failures = 0
		t.successes++
		if t.successes >= p.SuccessThreshold {
			t.Result = Success
		}
	} else {
		t.successes = 0
		t.failures++
		if t.failures >= p.FailureThreshold {
			t.Result = Failure
		}
	}
	return t.Result != before
}
