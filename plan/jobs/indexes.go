package jobs

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// completionIndexEnv is the variable Indexed Job containers get their index in.
const completionIndexEnv = "JOB_COMPLETION_INDEX"

const unknownIndex = -1

// indexSet is a set of completion indexes, printed as Kubernetes prints
// status.completedIndexes and status.failedIndexes: ascending intervals,
// "1,3-5,7,8" (a pair of consecutive indexes is written "7,8").
type indexSet map[int]struct{}

func (s indexSet) has(i int) bool { _, ok := s[i]; return ok }

func (s indexSet) add(i int) { s[i] = struct{}{} }

func (s indexSet) sorted() []int {
	out := make([]int, 0, len(s))
	for i := range s {
		out = append(out, i)
	}
	sort.Ints(out)
	return out
}

func (s indexSet) String() string {
	var b strings.Builder
	ix := s.sorted()
	for i := 0; i < len(ix); {
		j := i
		for j+1 < len(ix) && ix[j+1] == ix[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(ix[i]))
		switch {
		case j == i+1:
			b.WriteByte(',')
			b.WriteString(strconv.Itoa(ix[j]))
		case j > i+1:
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(ix[j]))
		}
		i = j + 1
	}
	return b.String()
}

// parseIndexes reads a completedIndexes/failedIndexes/succeededIndexes
// string, keeping indexes below completions. Malformed elements are skipped,
// as Kubernetes does.
func parseIndexes(s string, completions int) indexSet {
	out := indexSet{}
	if s == "" {
		return out
	}
	for _, part := range strings.Split(s, ",") {
		first, last, found := strings.Cut(part, "-")
		lo, err := strconv.Atoi(first)
		if err != nil || lo < 0 {
			continue
		}
		hi := lo
		if found {
			if hi, err = strconv.Atoi(last); err != nil || hi < lo {
				continue
			}
		}
		for i := lo; i <= hi && i < completions; i++ {
			out.add(i)
		}
	}
	return out
}

// completionIndex returns a pod's completion index annotation, or
// unknownIndex.
func completionIndex(p *corev1.Pod) int {
	v, ok := p.Annotations[batchv1.JobCompletionIndexAnnotation]
	if !ok {
		return unknownIndex
	}
	i, err := strconv.Atoi(v)
	if err != nil || i < 0 {
		return unknownIndex
	}
	return i
}

// validIndex reports whether a pod of an Indexed Job has an index in range.
func validIndex(p *corev1.Pod, completions int) bool {
	i := completionIndex(p)
	return i != unknownIndex && i < completions
}

// addCompletionIndex makes a pod template into the template of index i:
// annotation and label batch.kubernetes.io/job-completion-index, hostname
// <job>-<i>, and JOB_COMPLETION_INDEX in every container from the annotation
// (unless the container sets it itself).
func addCompletionIndex(t *corev1.PodTemplateSpec, jobName string, i int) {
	if t.Annotations == nil {
		t.Annotations = make(map[string]string)
	}
	t.Annotations[batchv1.JobCompletionIndexAnnotation] = strconv.Itoa(i)
	if t.Labels == nil {
		t.Labels = make(map[string]string)
	}
	t.Labels[batchv1.JobCompletionIndexAnnotation] = strconv.Itoa(i)
	t.Spec.Hostname = fmt.Sprintf("%s-%d", jobName, i)
	for j := range t.Spec.InitContainers {
		addCompletionIndexEnv(&t.Spec.InitContainers[j])
	}
	for j := range t.Spec.Containers {
		addCompletionIndexEnv(&t.Spec.Containers[j])
	}
}

func addCompletionIndexEnv(c *corev1.Container) {
	for _, e := range c.Env {
		if e.Name == completionIndexEnv {
			return
		}
	}
	c.Env = append(c.Env, corev1.EnvVar{
		Name: completionIndexEnv,
		ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{
			FieldPath: fmt.Sprintf("metadata.annotations['%s']", batchv1.JobCompletionIndexAnnotation),
		}},
	})
}

// indexFailureCount is a pod's batch.kubernetes.io/job-index-failure-count.
func indexFailureCount(p *corev1.Pod) int32 {
	return annotationInt32(p, batchv1.JobIndexFailureCountAnnotation)
}

// indexIgnoredFailureCount is a pod's
// batch.kubernetes.io/job-index-ignored-failure-count.
func indexIgnoredFailureCount(p *corev1.Pod) int32 {
	return annotationInt32(p, batchv1.JobIndexIgnoredFailureCountAnnotation)
}

func annotationInt32(p *corev1.Pod, key string) int32 {
	v, err := strconv.ParseInt(p.Annotations[key], 10, 32)
	if err != nil || v < 0 {
		return 0
	}
	return int32(v)
}
