package agentlet

import (
	"fmt"
	"strings"
	"time"

	"github.com/clusterctl/clusterctl/agentlet/cri"
	"github.com/clusterctl/clusterctl/nodeapi"
)

// MaxRecentErrors is how many distinct recent errors a status keeps.
const MaxRecentErrors = 10

// Condition reasons agentlet reports.
const (
	ReasonReady               = "AgentletReady"
	ReasonNotReady            = "ConditionsNotMet"
	ReasonNotRunning          = "AgentletNotRunning"
	ReasonStarting            = "AgentletStarting"
	ReasonHeartbeatStale      = "HeartbeatStale"
	ReasonRuntimeReady        = "RuntimeReady"
	ReasonRuntimeUnreachable  = "RuntimeUnreachable"
	ReasonRuntimeStatus       = "RuntimeStatusFailed"
	ReasonRuntimeNotReady     = "RuntimeNotReady"
	ReasonImagePresent        = "ImagePresent"
	ReasonImageStatusFailed   = "ImageStatusFailed"
	ReasonImageImportFailed   = "ImageImportFailed"
	ReasonNetworkReady        = "NetworkReady"
	ReasonNoCNIConfig         = "NoCNIConfig"
	ReasonNetworkNotReady     = "NetworkPluginNotReady"
	ReasonSpecApplied         = "Applied"
	ReasonNoSpec              = "NoSpec"
	ReasonSpecInvalid         = "SpecInvalid"
	ReasonRulesFailed         = "RulesFailed"
	ReasonStatusWriteFailed   = "StatusWriteFailed"
	ReasonHostFactsFailed     = "HostFactsFailed"
	ReasonCNIConfigUnreadable = "CNIConfigUnreadable"
	ReasonPodSyncFailed       = "PodSyncFailed"
)

// observation is everything one tick learned about the node. It is the input
// of the pure status functions below.
type observation struct {
	spec    *nodeapi.NodeSpec
	specErr error

	version    cri.Version
	versionErr error // non-nil: the runtime did not answer
	status     cri.Status
	statusErr  error

	imageChecked bool  // false when the runtime could not be asked
	imagePresent bool  // after any import
	imageErr     error // ImageStatus or import failure

	cniConf    string // first CNI config file found, "" for none
	cniConfErr error

	rulesErr error // base iptables rules (only with a valid spec)
}

// buildConditions derives the node conditions from one observation. Ready
// comes first; LastTransitionTime is left zero for mergeConditions to fill.
func buildConditions(o observation) []nodeapi.Condition {
	runtimeC := nodeapi.Condition{Type: nodeapi.ConditionRuntimeReady}
	switch {
	case o.versionErr != nil:
		runtimeC.Status, runtimeC.Reason, runtimeC.Message = nodeapi.False, ReasonRuntimeUnreachable, o.versionErr.Error()
	case o.statusErr != nil:
		runtimeC.Status, runtimeC.Reason, runtimeC.Message = nodeapi.False, ReasonRuntimeStatus, o.statusErr.Error()
	default:
		c, ok := o.status.Condition(cri.ConditionRuntimeReady)
		if ok && c.Status {
			runtimeC.Status, runtimeC.Reason = nodeapi.True, ReasonRuntimeReady
			runtimeC.Message = strings.TrimSpace(o.version.RuntimeName + " " + o.version.RuntimeVersion)
		} else {
			runtimeC.Status, runtimeC.Reason = nodeapi.False, ReasonRuntimeNotReady
			runtimeC.Message = criMessage(c, ok, "runtime does not report RuntimeReady")
		}
	}

	imageC := nodeapi.Condition{Type: nodeapi.ConditionSandboxImage}
	switch {
	case !o.imageChecked && o.imageErr != nil:
		imageC.Status, imageC.Reason, imageC.Message = nodeapi.Unknown, ReasonImageStatusFailed, o.imageErr.Error()
	case !o.imageChecked:
		imageC.Status, imageC.Reason, imageC.Message = nodeapi.Unknown, ReasonRuntimeUnreachable, "cannot ask the runtime for the sandbox image"
	case o.imagePresent:
		imageC.Status, imageC.Reason, imageC.Message = nodeapi.True, ReasonImagePresent, sandboxImage()
	case o.imageErr != nil:
		imageC.Status, imageC.Reason, imageC.Message = nodeapi.False, ReasonImageImportFailed, o.imageErr.Error()
	default:
		imageC.Status, imageC.Reason, imageC.Message = nodeapi.False, ReasonImageImportFailed, sandboxImage()+" is not present"
	}

	netC := nodeapi.Condition{Type: nodeapi.ConditionNetworkReady}
	switch {
	case o.cniConf == "":
		msg := "no CNI network config (*.conflist, *.conf, *.json) found"
		if o.cniConfErr != nil {
			msg = o.cniConfErr.Error()
		}
		netC.Status, netC.Reason, netC.Message = nodeapi.False, ReasonNoCNIConfig, msg
	case o.versionErr != nil || o.statusErr != nil:
		netC.Status, netC.Reason, netC.Message = nodeapi.Unknown, ReasonRuntimeUnreachable, "cannot ask the runtime for its network status"
	default:
		c, ok := o.status.Condition(cri.ConditionNetworkReady)
		if ok && c.Status {
			netC.Status, netC.Reason, netC.Message = nodeapi.True, ReasonNetworkReady, o.cniConf
		} else {
			netC.Status, netC.Reason = nodeapi.False, ReasonNetworkNotReady
			netC.Message = criMessage(c, ok, "runtime does not report NetworkReady")
		}
	}

	specC := nodeapi.Condition{Type: nodeapi.ConditionSpecApplied}
	switch {
	case o.specErr != nil:
		specC.Status, specC.Reason, specC.Message = nodeapi.False, ReasonSpecInvalid, o.specErr.Error()
	case o.spec == nil:
		specC.Status, specC.Reason, specC.Message = nodeapi.False, ReasonNoSpec, "no node spec applied yet"
	case o.rulesErr != nil:
		specC.Status, specC.Reason, specC.Message = nodeapi.False, ReasonRulesFailed, o.rulesErr.Error()
	default:
		specC.Status, specC.Reason = nodeapi.True, ReasonSpecApplied
		specC.Message = fmt.Sprintf("generation %d", o.spec.Generation)
	}

	others := []nodeapi.Condition{runtimeC, imageC, netC, specC}
	return append([]nodeapi.Condition{readyCondition(others)}, others...)
}

// readyCondition is True when every other condition is True.
func readyCondition(others []nodeapi.Condition) nodeapi.Condition {
	var failing []string
	for _, c := range others {
		if c.Status != nodeapi.True {
			failing = append(failing, fmt.Sprintf("%s=%s (%s)", c.Type, c.Status, c.Reason))
		}
	}
	if len(failing) == 0 {
		return nodeapi.Condition{Type: nodeapi.ConditionReady, Status: nodeapi.True, Reason: ReasonReady, Message: "all conditions are True"}
	}
	return nodeapi.Condition{Type: nodeapi.ConditionReady, Status: nodeapi.False, Reason: ReasonNotReady,
		Message: strings.Join(failing, ", ")}
}

func criMessage(c cri.Condition, ok bool, missing string) string {
	if !ok {
		return missing
	}
	return strings.TrimSpace(strings.TrimSuffix(c.Reason+": "+c.Message, ": "))
}

func sandboxImage() string { return pauseRef }

// mergeConditions stamps next with transition times: a condition whose
// status did not change keeps its previous LastTransitionTime, any other gets
// now. Reason and message changes alone are not transitions.
func mergeConditions(prev, next []nodeapi.Condition, now time.Time) []nodeapi.Condition {
	out := make([]nodeapi.Condition, len(next))
	for i, c := range next {
		c.LastTransitionTime = now
		for _, p := range prev {
			if p.Type == c.Type && p.Status == c.Status && !p.LastTransitionTime.IsZero() {
				c.LastTransitionTime = p.LastTransitionTime
			}
		}
		out[i] = c
	}
	return out
}

// problem is one error a tick ran into, before it becomes an event.
type problem struct {
	reason  string
	message string
}

// recordEvents adds this tick's problems to the recent errors: a problem seen
// before (same reason and message) moves to the end with its Time updated and
// Count increased; only the newest MaxRecentErrors are kept. It returns the
// new list and the problems that were not in it before (to be logged).
func recordEvents(events []nodeapi.Event, problems []problem, now time.Time) ([]nodeapi.Event, []problem) {
	out := append([]nodeapi.Event(nil), events...)
	var fresh []problem
	for _, p := range problems {
		ev := nodeapi.Event{Time: now, Reason: p.reason, Message: p.message, Count: 1}
		found := false
		for i, e := range out {
			if e.Reason == p.reason && e.Message == p.message {
				ev.Count = max(e.Count, 1) + 1
				out = append(out[:i], out[i+1:]...)
				found = true
				break
			}
		}
		if !found {
			fresh = append(fresh, p)
		}
		out = append(out, ev)
	}
	if len(out) > MaxRecentErrors {
		out = out[len(out)-MaxRecentErrors:]
	}
	return out, fresh
}

// conditionChanges lists the conditions whose status or reason changed
// between prev and next, for logging.
func conditionChanges(prev, next []nodeapi.Condition) []nodeapi.Condition {
	var changed []nodeapi.Condition
	for _, c := range next {
		same := false
		for _, p := range prev {
			if p.Type == c.Type && p.Status == c.Status && p.Reason == c.Reason {
				same = true
			}
		}
		if !same {
			changed = append(changed, c)
		}
	}
	return changed
}
