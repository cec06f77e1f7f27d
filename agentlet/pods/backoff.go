package pods

import "time"

// BackoffPolicy is Kubernetes' crash-loop back-off: a crashed container is
// restarted at once the first time, then after Base, 2×Base, ... up to Max.
// A container that ran for at least Reset (or whose previous failure lies
// Reset in the past) starts over. Image pulls and sandbox creation use the
// same numbers, without the immediate first retry.
type BackoffPolicy struct {
	Base  time.Duration
	Max   time.Duration
	Reset time.Duration
}

// DefaultBackoff is kubelet's: 10s doubling to 5m, reset after 10 minutes.
func DefaultBackoff() BackoffPolicy {
	return BackoffPolicy{Base: 10 * time.Second, Max: 5 * time.Minute, Reset: 10 * time.Minute}
}

// Backoff is the back-off state of one container, image pull or sandbox.
type Backoff struct {
	// Delay is the delay the next failure gets; 0 before the first.
	Delay time.Duration `json:"delay,omitempty"`
	// Since is the failure that set Delay.
	Since time.Time `json:"since,omitzero"`
}

// expired reports whether failedAt starts a fresh series: no earlier
// failure, a long run (ran ≥ Reset) or a long quiet spell since the last one.
func (p BackoffPolicy) expired(b Backoff, startedAt, failedAt time.Time) bool {
	if b.Delay == 0 || b.Since.IsZero() {
		return true
	}
	if !startedAt.IsZero() && failedAt.Sub(startedAt) >= p.Reset {
		return true
	}
	return failedAt.Sub(b.Since) > p.Reset+p.Max
}

// RestartAt decides when a container that ran from startedAt and failed at
// failedAt may be restarted, and the back-off state to keep once it is.
func (p BackoffPolicy) RestartAt(b Backoff, startedAt, failedAt time.Time) (time.Time, Backoff) {
	if p.expired(b, startedAt, failedAt) {
		return failedAt, Backoff{Delay: p.Base, Since: failedAt}
	}
	return failedAt.Add(b.Delay), Backoff{Delay: min(2*b.Delay, p.Max), Since: failedAt}
}

// Failed records a failed attempt (pull, sandbox creation) at failedAt and
// returns the new state; the next attempt is due at Since+Delay.
func (p BackoffPolicy) Failed(b Backoff, failedAt time.Time) Backoff {
	if p.expired(b, time.Time{}, failedAt) {
		return Backoff{Delay: p.Base, Since: failedAt}
	}
	return Backoff{Delay: min(2*b.Delay, p.Max), Since: failedAt}
}

// Retry is a failed step that is retried with back-off: an image pull, a
// container creation or a sandbox creation. The zero value means no failure.
type Retry struct {
	Backoff Backoff `json:"backoff,omitzero"`
	// Reason is the waiting reason shown while it fails (ErrImagePull,
	// CreateContainerError, ...); Message the error.
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
}

// Failing reports whether the step has failed and not succeeded since.
func (r Retry) Failing() bool { return r.Reason != "" }

// Due is when the step may be tried again.
func (r Retry) Due() time.Time {
	if !r.Failing() {
		return time.Time{}
	}
	return r.Backoff.Since.Add(r.Backoff.Delay)
}

// Fail records a failure at now.
func (r Retry) Fail(p BackoffPolicy, reason, message string, now time.Time) Retry {
	return Retry{Backoff: p.Failed(r.Backoff, now), Reason: reason, Message: message}
}

// Succeed clears the failure but keeps the back-off series, so a flapping
// step still backs off.
func (r Retry) Succeed() Retry { return Retry{Backoff: r.Backoff} }
