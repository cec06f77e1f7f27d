package pods

import (
	"fmt"
	"time"

	"github.com/clusterctl/clusterctl/agentlet/cri"
	"github.com/clusterctl/clusterctl/nodeapi"
)

// Fixture builders for the pure tests.

var t0 = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

var testPolicy = BackoffPolicy{Base: 10 * time.Second, Max: 5 * time.Minute, Reset: 10 * time.Minute}

// podOf is a pod with busybox containers of the given names.
func podOf(name, policy string, containers ...string) nodeapi.PodSpec {
	p := nodeapi.PodSpec{UID: "uid-" + name, Namespace: "default", Name: name, RestartPolicy: policy,
		TerminationGracePeriodSeconds: 30}
	for _, c := range containers {
		p.Containers = append(p.Containers, nodeapi.ContainerSpec{Name: c, Image: "busybox:1", ImagePullPolicy: nodeapi.PullIfNotPresent})
	}
	return p
}

func withInit(p nodeapi.PodSpec, names ...string) nodeapi.PodSpec {
	for _, n := range names {
		p.InitContainers = append(p.InitContainers, nodeapi.ContainerSpec{Name: n, Image: "busybox:1"})
	}
	return p
}

func labels(uid, ns, name string) map[string]string {
	return map[string]string{nodeapi.LabelPodUID: uid, nodeapi.LabelPodNamespace: ns, nodeapi.LabelPodName: name}
}

// sb is a sandbox of pod p.
func sb(p nodeapi.PodSpec, id string, attempt uint32, ready bool) cri.SandboxStatus {
	s := cri.SandboxStatus{Sandbox: cri.Sandbox{ID: id, Name: p.Name, Namespace: p.Namespace, UID: p.UID, Attempt: attempt,
		State: cri.SandboxNotReady, CreatedAt: t0, Labels: labels(p.UID, p.Namespace, p.Name)}}
	if ready {
		s.State, s.IP = cri.SandboxReady, "10.244.1.5"
	}
	return s
}

// ctr is a container instance of pod p in sandbox sbID, with the spec's hash.
func ctr(p nodeapi.PodSpec, sbID, name string, attempt uint32, state cri.ContainerState) cri.ContainerStatus {
	l := labels(p.UID, p.Namespace, p.Name)
	l[nodeapi.LabelContainerName] = name
	c := cri.ContainerStatus{Container: cri.Container{ID: fmt.Sprintf("%s-%s-%d", sbID, name, attempt), SandboxID: sbID, Name: name,
		Attempt: attempt, Image: "busybox:1", ImageRef: "sha256:bb", State: state, CreatedAt: t0, Labels: l,
		Annotations: map[string]string{}}}
	for _, cs := range append(append([]nodeapi.ContainerSpec{}, p.InitContainers...), p.Containers...) {
		if cs.Name == name {
			c.Annotations[AnnotationHash] = ContainerHash(&cs)
		}
	}
	if state != cri.ContainerCreated {
		c.StartedAt = t0
	}
	return c
}

// exited makes c an instance that ran from start to end with code.
func exited(c cri.ContainerStatus, code int32, start, end time.Time) cri.ContainerStatus {
	c.State, c.ExitCode, c.StartedAt, c.FinishedAt = cri.ContainerExited, code, start, end
	if code == 0 {
		c.Reason = nodeapi.ReasonCompleted
	} else {
		c.Reason = nodeapi.ReasonError
	}
	return c
}

// bookOf is a book with the given attempts per container.
func bookOf(p nodeapi.PodSpec, attempts map[string]uint32) *Book {
	b := NewBook(&p, t0)
	for name, n := range attempts {
		b.Container(name).Attempts = n
	}
	b.volumesHash = VolumesHash(&p)
	return b
}
