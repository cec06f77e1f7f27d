package jobs

import (
	"fmt"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// matchPodFailurePolicy is Kubernetes' matchPodFailurePolicy for a failed
// pod: the Job failure message when a FailJob rule matched, whether the
// failure counts towards the backoff limits (not for Ignore), and the
// matched action (nil when no rule matched).
func matchPodFailurePolicy(policy *batchv1.PodFailurePolicy, p *corev1.Pod) (*string, bool, *batchv1.PodFailurePolicyAction) {
	if policy == nil {
		return nil, true, nil
	}
	for i, rule := range policy.Rules {
		action := rule.Action
		switch {
		case rule.OnExitCodes != nil:
			cs := matchOnExitCodes(&p.Status, rule.OnExitCodes)
			if cs == nil {
				continue
			}
			switch action {
			case batchv1.PodFailurePolicyActionIgnore:
				return nil, false, &action
			case batchv1.PodFailurePolicyActionFailIndex, batchv1.PodFailurePolicyActionCount:
				return nil, true, &action
			case batchv1.PodFailurePolicyActionFailJob:
				msg := fmt.Sprintf("Container %s for pod %s/%s failed with exit code %v matching %v rule at index %d",
					cs.Name, p.Namespace, p.Name, cs.State.Terminated.ExitCode, action, i)
				return &msg, true, &action
			}
		case rule.OnPodConditions != nil:
			cond := matchOnPodConditions(&p.Status, rule.OnPodConditions)
			if cond == nil {
				continue
			}
			switch action {
			case batchv1.PodFailurePolicyActionIgnore:
				return nil, false, &action
			case batchv1.PodFailurePolicyActionFailIndex, batchv1.PodFailurePolicyActionCount:
				return nil, true, &action
			case batchv1.PodFailurePolicyActionFailJob:
				msg := fmt.Sprintf("Pod %s/%s has condition %v matching %v rule at index %d",
					p.Namespace, p.Name, cond.Type, action, i)
				return &msg, true, &action
			}
		}
	}
	return nil, true, nil
}

// matchOnExitCodes returns the first terminated container (then init
// container) whose non-zero exit code matches the requirement.
func matchOnExitCodes(status *corev1.PodStatus, req *batchv1.PodFailurePolicyOnExitCodesRequirement) *corev1.ContainerStatus {
	if cs := matchingContainer(status.ContainerStatuses, req); cs != nil {
		return cs
	}
	return matchingContainer(status.InitContainerStatuses, req)
}

func matchingContainer(statuses []corev1.ContainerStatus, req *batchv1.PodFailurePolicyOnExitCodesRequirement) *corev1.ContainerStatus {
	for i := range statuses {
		cs := &statuses[i]
		if cs.State.Terminated == nil {
			continue
		}
		if req.ContainerName != nil && *req.ContainerName != cs.Name {
			continue
		}
		if code := cs.State.Terminated.ExitCode; code != 0 && exitCodeMatches(code, req) {
			return cs
		}
	}
	return nil
}

func exitCodeMatches(code int32, req *batchv1.PodFailurePolicyOnExitCodesRequirement) bool {
	in := false
	for _, v := range req.Values {
		if v == code {
			in = true
			break
		}
	}
	switch req.Operator {
	case batchv1.PodFailurePolicyOnExitCodesOpIn:
		return in
	case batchv1.PodFailurePolicyOnExitCodesOpNotIn:
		return !in
	}
	return false
}

func matchOnPodConditions(status *corev1.PodStatus, patterns []batchv1.PodFailurePolicyOnPodConditionsPattern) *corev1.PodCondition {
	for i := range status.Conditions {
		c := &status.Conditions[i]
		for _, pat := range patterns {
			if c.Type == pat.Type && c.Status == pat.Status {
				return c
			}
		}
	}
	return nil
}

// matchSuccessPolicy is Kubernetes' matchSuccessPolicy for Indexed Jobs: the
// condition message and whether a rule is met by the succeeded indexes.
func matchSuccessPolicy(policy *batchv1.SuccessPolicy, completions int, succeeded indexSet) (string, bool) {
	if policy == nil || len(succeeded) == 0 {
		return "", false
	}
	for i, rule := range policy.Rules {
		switch {
		case rule.SucceededIndexes != nil:
			required := parseIndexes(*rule.SucceededIndexes, completions)
			if len(required) == 0 {
				continue
			}
			n := 0
			for ix := range required {
				if succeeded.has(ix) {
					n++
				}
			}
			if (rule.SucceededCount == nil && n == len(required)) || (rule.SucceededCount != nil && n >= int(*rule.SucceededCount)) {
				return fmt.Sprintf("Matched rules at index %d", i), true
			}
		case rule.SucceededCount != nil:
			if len(succeeded) >= int(*rule.SucceededCount) {
				return fmt.Sprintf("Matched rules at index %d", i), true
			}
		}
	}
	return "", false
}
