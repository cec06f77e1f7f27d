package plan

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"path"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/clusterctl/clusterctl/nodeapi"
)

// Probe defaults, as the API server sets them.
const (
	defaultProbeTimeout   = 1
	defaultProbePeriod    = 10
	defaultProbeSuccesses = 1
	defaultProbeFailures  = 3
)

// container lowers one container or init container.
func (l *lowerer) container(path string, c *corev1.Container, init bool, filesVolumes map[string]bool) nodeapi.ContainerSpec {
	if c.Name == "" {
		l.fail(path+".name", "required")
	}
	if c.Image == "" {
		l.fail(path+".image", "required")
	}
	l.refuseContainerFields(path, c, init)

	env := l.env(path, c)
	out := nodeapi.ContainerSpec{
		Name:                   c.Name,
		Image:                  c.Image,
		ImagePullPolicy:        l.imagePullPolicy(path, c),
		Command:                l.expandAll(path+".command", c.Command, env),
		Args:                   l.expandAll(path+".args", c.Args, env),
		WorkingDir:             c.WorkingDir,
		Env:                    env.vars,
		Ports:                  lowerPorts(c.Ports),
		Resources:              l.resources(path+".resources", c.Resources),
		VolumeMounts:           l.volumeMounts(path, c.VolumeMounts, env, filesVolumes),
		LivenessProbe:          l.probe(path+".livenessProbe", c.LivenessProbe, c),
		ReadinessProbe:         l.probe(path+".readinessProbe", c.ReadinessProbe, c),
		StartupProbe:           l.probe(path+".startupProbe", c.StartupProbe, c),
		PreStop:                l.preStop(path+".lifecycle", c.Lifecycle, c),
		SecurityContext:        l.containerSecurityContext(path, c),
		TTY:                    c.TTY,
		Stdin:                  c.Stdin,
		TerminationMessagePath: c.TerminationMessagePath,
	}
	if out.TerminationMessagePath == "" {
		out.TerminationMessagePath = defaultTerminationMessagePath
	}
	return out
}

func (l *lowerer) refuseContainerFields(path string, c *corev1.Container, init bool) {
	if c.RestartPolicy != nil {
		l.fail(path+".restartPolicy", "per-container restart policies (sidecar containers) are not supported")
	}
	if len(c.RestartPolicyRules) > 0 {
		l.fail(path+".restartPolicyRules", "not supported")
	}
	if len(c.VolumeDevices) > 0 {
		l.fail(path+".volumeDevices", "not supported")
	}
	if c.TerminationMessagePolicy != "" && c.TerminationMessagePolicy != corev1.TerminationMessageReadFile {
		l.fail(path+".terminationMessagePolicy", "%q is not supported (only File)", c.TerminationMessagePolicy)
	}
	if c.StdinOnce {
		l.fail(path+".stdinOnce", "not supported")
	}
	if !init && c.Lifecycle != nil && c.Lifecycle.PostStart != nil {
		l.fail(path+".lifecycle.postStart", "not supported")
	}
	if !init && c.Lifecycle != nil && c.Lifecycle.StopSignal != nil {
		l.fail(path+".lifecycle.stopSignal", "not supported")
	}
	if init {
		// The API server rejects these on init containers; so do we rather
		// than drop them.
		for _, f := range []struct {
			name string
			set  bool
		}{
			{"lifecycle", c.Lifecycle != nil}, {"livenessProbe", c.LivenessProbe != nil},
			{"readinessProbe", c.ReadinessProbe != nil}, {"startupProbe", c.StartupProbe != nil},
		} {
			if f.set {
				l.fail(path+"."+f.name, "not allowed on init containers")
			}
		}
	}
	// resizePolicy only matters to in-place resizes, which clusterctl does
	// by replacing the pod.
}

// imagePullPolicy defaults like the API server: Always for the tag latest or
// no tag (and no digest), IfNotPresent otherwise.
func (l *lowerer) imagePullPolicy(path string, c *corev1.Container) string {
	switch c.ImagePullPolicy {
	case corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
		return string(c.ImagePullPolicy)
	case "":
		if imageTag(c.Image) == "latest" {
			return nodeapi.PullAlways
		}
		return nodeapi.PullIfNotPresent
	default:
		l.fail(path+".imagePullPolicy", "unsupported value %q", c.ImagePullPolicy)
		return ""
	}
}

// imageTag returns the tag of an image reference: "latest" when it has
// neither tag nor digest, "" when it has only a digest.
func imageTag(image string) string {
	name, _, digested := strings.Cut(image, "@")
	repo := name[strings.LastIndex(name, "/")+1:]
	if i := strings.LastIndex(repo, ":"); i >= 0 {
		return repo[i+1:]
	}
	if digested {
		return ""
	}
	return "latest"
}

// envBuilder collects a container's environment: names in order of first
// definition, a later definition replacing the value in place.
type envBuilder struct {
	vars  []nodeapi.EnvVar
	index map[string]int
}

func (e *envBuilder) set(v nodeapi.EnvVar) {
	if i, ok := e.index[v.Name]; ok {
		e.vars[i] = v
		return
	}
	e.index[v.Name] = len(e.vars)
	e.vars = append(e.vars, v)
}

// lookup returns the value of name for $(name) expansion; podIP reports that
// the value is the pod IP, known only on the node.
func (e *envBuilder) lookup(name string) (value string, ok, podIP bool) {
	i, ok := e.index[name]
	if !ok {
		return "", false, false
	}
	v := e.vars[i]
	return v.Value, true, v.FieldPath == nodeapi.FieldPodIP
}

// expander returns an expand lookup over e that records references to
// pod-IP variables as errors of the field at path.
func (l *lowerer) expander(path string, e *envBuilder) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok, podIP := e.lookup(name)
		if podIP {
			l.fail(path, "references $(%s), which is status.podIP: only the node knows the pod IP and expanding it there is not supported yet", name)
			return "", false
		}
		return v, ok
	}
}

// env resolves a container's envFrom and env like kubelet's
// makeEnvironmentVariables: envFrom first (env overrides it), then env in
// order, each value expanding $(VAR) references to the variables defined so
// far. Values from sources (fieldRef, configMapKeyRef, ...) are not expanded.
//
// TODO(services): kubelet also injects Service environment variables
// (enableServiceLinks) and expands references to them; they land with Services.
func (l *lowerer) env(path string, c *corev1.Container) *envBuilder {
	e := &envBuilder{index: map[string]int{}}
	for i, from := range c.EnvFrom {
		fp := fmt.Sprintf("%s.envFrom[%d]", path, i)
		var data map[string]string
		switch {
		case from.ConfigMapRef != nil && from.SecretRef != nil:
			l.fail(fp, "exactly one of configMapRef and secretRef is allowed")
			continue
		case from.ConfigMapRef != nil:
			ref := from.ConfigMapRef
			cm, ok := l.configMap(ref.Name)
			if !ok {
				if !isTrue(ref.Optional) {
					l.fail(fp+".configMapRef", "configmap %s not found", l.objectKey(ref.Name))
				}
				continue
			}
			data = cm.Data
		case from.SecretRef != nil:
			ref := from.SecretRef
			_, sd, ok := l.secretData(ref.Name)
			if !ok {
				if !isTrue(ref.Optional) {
					l.fail(fp+".secretRef", "secret %s not found", l.objectKey(ref.Name))
				}
				continue
			}
			data = make(map[string]string, len(sd))
			for k, v := range sd {
				data[k] = string(v)
			}
		default:
			l.fail(fp, "one of configMapRef and secretRef is required")
			continue
		}
		for _, k := range slices.Sorted(maps.Keys(data)) {
			name := from.Prefix + k
			if !validEnvName(name) {
				continue // kubelet skips keys that cannot be variable names
			}
			e.set(nodeapi.EnvVar{Name: name, Value: data[k]})
		}
	}
	for i := range c.Env {
		v := &c.Env[i]
		vp := fmt.Sprintf("%s.env[%d]", path, i)
		if v.Name == "" {
			l.fail(vp+".name", "required")
			continue
		}
		if v.Value != "" {
			e.set(nodeapi.EnvVar{Name: v.Name, Value: expand(v.Value, l.expander(vp+".value", e))})
			continue
		}
		if v.ValueFrom == nil {
			e.set(nodeapi.EnvVar{Name: v.Name})
			continue
		}
		if value, ok := l.envSource(vp+".valueFrom", v.ValueFrom, c); ok {
			e.set(value.named(v.Name))
		}
	}
	return e
}

// envValue is a resolved env source: a value, or the pod IP.
type envValue struct {
	value string
	podIP bool
}

func (v envValue) named(name string) nodeapi.EnvVar {
	if v.podIP {
		return nodeapi.EnvVar{Name: name, FieldPath: nodeapi.FieldPodIP}
	}
	return nodeapi.EnvVar{Name: name, Value: v.value}
}

// envSource resolves one valueFrom; ok is false when the variable is to be
// skipped (an optional source that is missing) or on error.
func (l *lowerer) envSource(path string, src *corev1.EnvVarSource, c *corev1.Container) (envValue, bool) {
	n := 0
	for _, set := range []bool{src.FieldRef != nil, src.ResourceFieldRef != nil, src.ConfigMapKeyRef != nil,
		src.SecretKeyRef != nil, src.FileKeyRef != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		l.fail(path, "exactly one source is required (got %d)", n)
		return envValue{}, false
	}
	switch {
	case src.FieldRef != nil:
		return l.fieldRef(path+".fieldRef", src.FieldRef, false)
	case src.ResourceFieldRef != nil:
		v, ok := l.resourceFieldRef(path+".resourceFieldRef", src.ResourceFieldRef, c)
		return envValue{value: v}, ok
	case src.ConfigMapKeyRef != nil:
		ref := src.ConfigMapKeyRef
		cm, ok := l.configMap(ref.Name)
		if !ok {
			if !isTrue(ref.Optional) {
				l.fail(path+".configMapKeyRef", "configmap %s not found", l.objectKey(ref.Name))
			}
			return envValue{}, false
		}
		v, ok := cm.Data[ref.Key]
		if !ok {
			if !isTrue(ref.Optional) {
				l.fail(path+".configMapKeyRef", "key %s not in configmap %s", ref.Key, l.objectKey(ref.Name))
			}
			return envValue{}, false
		}
		return envValue{value: v}, true
	case src.SecretKeyRef != nil:
		ref := src.SecretKeyRef
		_, data, ok := l.secretData(ref.Name)
		if !ok {
			if !isTrue(ref.Optional) {
				l.fail(path+".secretKeyRef", "secret %s not found", l.objectKey(ref.Name))
			}
			return envValue{}, false
		}
		v, ok := data[ref.Key]
		if !ok {
			if !isTrue(ref.Optional) {
				l.fail(path+".secretKeyRef", "key %s not in secret %s", ref.Key, l.objectKey(ref.Name))
			}
			return envValue{}, false
		}
		return envValue{value: string(v)}, true
	default:
		l.fail(path+".fileKeyRef", "not supported")
		return envValue{}, false
	}
}

// fieldRef resolves a downward API field: for env vars (volume false) or
// for downward API volume files (volume true), which allow fewer fields.
func (l *lowerer) fieldRef(path string, f *corev1.ObjectFieldSelector, volume bool) (envValue, bool) {
	if f.APIVersion != "" && f.APIVersion != "v1" {
		l.fail(path+".apiVersion", "unsupported %q (want v1)", f.APIVersion)
		return envValue{}, false
	}
	p := l.pod
	if field, key, ok := splitSubscript(f.FieldPath); ok {
		switch field {
		case "metadata.labels":
			return envValue{value: p.Labels[key]}, true
		case "metadata.annotations":
			return envValue{value: p.Annotations[key]}, true
		}
	}
	switch f.FieldPath {
	case "metadata.name":
		return envValue{value: p.Name}, true
	case "metadata.namespace":
		return envValue{value: p.Namespace}, true
	case "metadata.uid":
		return envValue{value: string(p.UID)}, true
	}
	if volume {
		switch f.FieldPath {
		case "metadata.labels":
			return envValue{value: formatMap(p.Labels)}, true
		case "metadata.annotations":
			return envValue{value: formatMap(p.Annotations)}, true
		}
	} else {
		switch f.FieldPath {
		case "spec.nodeName":
			node := cmp.Or(l.in.NodeName, p.Spec.NodeName)
			if node == "" {
				l.fail(path, "spec.nodeName is not known: the pod is not bound to a node")
				return envValue{}, false
			}
			return envValue{value: node}, true
		case "spec.serviceAccountName":
			sa := cmp.Or(p.Spec.ServiceAccountName, p.Spec.DeprecatedServiceAccount, defaultServiceAccount)
			return envValue{value: sa}, true
		case "status.hostIP", "status.hostIPs":
			if l.in.HostIP == "" {
				l.fail(path, "%s is not known: the node has no address", f.FieldPath)
				return envValue{}, false
			}
			return envValue{value: l.in.HostIP}, true
		case "status.podIP", "status.podIPs": // single stack: both are the pod IP
			return envValue{podIP: true}, true
		}
	}
	l.fail(path+".fieldPath", "unsupported field %q", f.FieldPath)
	return envValue{}, false
}

// resourceFieldRef resolves a container resource the way kubelet does:
// limits default to the node's allocatable, the value is divided by the
// divisor (default 1) and rounded up.
func (l *lowerer) resourceFieldRef(path string, f *corev1.ResourceFieldSelector, self *corev1.Container) (string, bool) {
	c := self
	if f.ContainerName != "" {
		c = nil
		for _, list := range [][]corev1.Container{l.pod.Spec.Containers, l.pod.Spec.InitContainers} {
			for i := range list {
				if list[i].Name == f.ContainerName {
					c = &list[i]
				}
			}
		}
		if c == nil {
			l.fail(path+".containerName", "no container %q", f.ContainerName)
			return "", false
		}
	} else if c == nil {
		l.fail(path+".containerName", "required")
		return "", false
	}
	divisor := f.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	res, ok := c.Resources.Limits, true
	kind, name, _ := strings.Cut(f.Resource, ".")
	if kind == "requests" {
		res = c.Resources.Requests
	} else if kind != "limits" {
		ok = false
	}
	var q resource.Quantity
	if ok {
		q, ok = res[corev1.ResourceName(name)]
		if !ok && kind == "requests" {
			q, ok = c.Resources.Limits[corev1.ResourceName(name)] // requests default to limits
		}
	}
	switch f.Resource {
	case "limits.cpu", "requests.cpu":
		millis := q.MilliValue()
		if !ok && kind == "limits" {
			if millis = l.in.NodeAllocatable.CPUMillis; millis == 0 {
				l.fail(path, "%s of a container without a cpu limit needs the node's allocatable cpu, which is not known", f.Resource)
				return "", false
			}
		}
		if divisor.MilliValue() <= 0 {
			l.fail(path+".divisor", "must be positive")
			return "", false
		}
		return strconv.FormatInt(int64(math.Ceil(float64(millis)/float64(divisor.MilliValue()))), 10), true
	case "limits.memory", "requests.memory":
		bytes := q.Value()
		if !ok && kind == "limits" {
			if bytes = l.in.NodeAllocatable.MemoryBytes; bytes == 0 {
				l.fail(path, "%s of a container without a memory limit needs the node's allocatable memory, which is not known", f.Resource)
				return "", false
			}
		}
		if divisor.Value() <= 0 {
			l.fail(path+".divisor", "must be positive")
			return "", false
		}
		return strconv.FormatInt(int64(math.Ceil(float64(bytes)/float64(divisor.Value()))), 10), true
	default:
		l.fail(path+".resource", "unsupported resource %q (only cpu and memory)", f.Resource)
		return "", false
	}
}

// splitSubscript splits "metadata.labels['key']" into "metadata.labels" and "key".
func splitSubscript(fieldPath string) (string, string, bool) {
	s, ok := strings.CutSuffix(fieldPath, "']")
	if !ok {
		return "", "", false
	}
	field, key, ok := strings.Cut(s, "['")
	if !ok || field == "" {
		return "", "", false
	}
	return field, key, true
}

// formatMap renders labels or annotations like the downward API: one
// key="value" per line, sorted by key, no trailing newline.
func formatMap(m map[string]string) string {
	var b strings.Builder
	for i, k := range slices.Sorted(maps.Keys(m)) {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "%s=%q", k, m[k])
	}
	return b.String()
}

// validEnvName is the API server's relaxed environment variable name rule:
// printable ASCII except '='.
func validEnvName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if name[i] < ' ' || name[i] > '~' || name[i] == '=' {
			return false
		}
	}
	return true
}

// expandAll expands $(VAR) references in command or args against the
// container's final environment, as kubelet does.
func (l *lowerer) expandAll(path string, in []string, env *envBuilder) []string {
	if len(in) == 0 {
		return nil
	}
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = expand(s, l.expander(fmt.Sprintf("%s[%d]", path, i), env))
	}
	return out
}

func lowerPorts(ports []corev1.ContainerPort) []nodeapi.ContainerPort {
	var out []nodeapi.ContainerPort
	for _, p := range ports {
		proto := string(p.Protocol)
		if proto == "" {
			proto = string(corev1.ProtocolTCP)
		}
		out = append(out, nodeapi.ContainerPort{Name: p.Name, ContainerPort: p.ContainerPort,
			HostPort: p.HostPort, HostIP: p.HostIP, Protocol: proto})
	}
	return out
}

// resources lowers cpu and memory requests and limits. As the API server
// does, a request left unset defaults to the limit.
func (l *lowerer) resources(path string, r corev1.ResourceRequirements) nodeapi.ContainerResources {
	for _, kind := range []struct {
		name string
		list corev1.ResourceList
	}{{"limits", r.Limits}, {"requests", r.Requests}} {
		for _, name := range slices.Sorted(maps.Keys(kind.list)) {
			if name != corev1.ResourceCPU && name != corev1.ResourceMemory {
				l.fail(fmt.Sprintf("%s.%s[%s]", path, kind.name, name), "not supported (only cpu and memory)")
			}
		}
	}
	if len(r.Claims) > 0 {
		l.fail(path+".claims", "not supported (dynamic resource allocation)")
	}
	amount := func(list corev1.ResourceList, name corev1.ResourceName, kind string) int64 {
		q, ok := list[name]
		if !ok {
			return 0
		}
		if q.Sign() < 0 {
			l.fail(fmt.Sprintf("%s.%s[%s]", path, kind, name), "must not be negative (got %s)", q.String())
			return 0
		}
		if name == corev1.ResourceCPU {
			return q.MilliValue()
		}
		return q.Value()
	}
	out := nodeapi.ContainerResources{
		CPULimitMillis:     amount(r.Limits, corev1.ResourceCPU, "limits"),
		MemoryLimitBytes:   amount(r.Limits, corev1.ResourceMemory, "limits"),
		CPURequestMillis:   amount(r.Requests, corev1.ResourceCPU, "requests"),
		MemoryRequestBytes: amount(r.Requests, corev1.ResourceMemory, "requests"),
	}
	if _, ok := r.Requests[corev1.ResourceCPU]; !ok {
		out.CPURequestMillis = out.CPULimitMillis
	}
	if _, ok := r.Requests[corev1.ResourceMemory]; !ok {
		out.MemoryRequestBytes = out.MemoryLimitBytes
	}
	if _, ok := r.Limits[corev1.ResourceCPU]; ok && out.CPURequestMillis > out.CPULimitMillis {
		l.fail(path+".requests[cpu]", "%dm must not exceed the limit %dm", out.CPURequestMillis, out.CPULimitMillis)
	}
	if _, ok := r.Limits[corev1.ResourceMemory]; ok && out.MemoryRequestBytes > out.MemoryLimitBytes {
		l.fail(path+".requests[memory]", "%d bytes must not exceed the limit %d bytes", out.MemoryRequestBytes, out.MemoryLimitBytes)
	}
	return out
}

// volumeMounts lowers the mounts; mounts of ConfigMap, Secret, downward API
// and projected volumes are read-only, as kubelet makes them.
func (l *lowerer) volumeMounts(path string, mounts []corev1.VolumeMount, env *envBuilder, filesVolumes map[string]bool) []nodeapi.VolumeMount {
	var out []nodeapi.VolumeMount
	for i, m := range mounts {
		mp := fmt.Sprintf("%s.volumeMounts[%d]", path, i)
		if m.MountPropagation != nil && *m.MountPropagation != corev1.MountPropagationNone {
			l.fail(mp+".mountPropagation", "%q is not supported (only None)", *m.MountPropagation)
		}
		if m.RecursiveReadOnly != nil && *m.RecursiveReadOnly != corev1.RecursiveReadOnlyDisabled {
			l.fail(mp+".recursiveReadOnly", "%q is not supported", *m.RecursiveReadOnly)
		}
		if len(m.BindMountOptions) > 0 {
			l.fail(mp+".bindMountOptions", "not supported")
		}
		sub := m.SubPath
		switch {
		case m.SubPath != "" && m.SubPathExpr != "":
			l.fail(mp, "subPath and subPathExpr are mutually exclusive")
		case m.SubPathExpr != "":
			var ok bool
			if sub, ok = l.expandSubPath(mp+".subPathExpr", m.SubPathExpr, env); !ok {
				sub = ""
			}
		}
		if sub != "" {
			if msg := checkRelativePath(sub); msg != "" {
				l.fail(mp+".subPath", "%q %s", sub, msg)
			}
		}
		out = append(out, nodeapi.VolumeMount{Name: m.Name, MountPath: m.MountPath, SubPath: sub,
			ReadOnly: m.ReadOnly || filesVolumes[m.Name]})
	}
	return out
}

// expandSubPath is kubelet's ExpandContainerVolumeMounts: unlike command and
// args, a reference to an unset or empty variable is an error.
func (l *lowerer) expandSubPath(path, expr string, env *envBuilder) (string, bool) {
	var missing []string
	ok := true
	out := expand(expr, func(name string) (string, bool) {
		v, found, podIP := env.lookup(name)
		switch {
		case podIP:
			l.fail(path, "references $(%s), which is status.podIP: only the node knows the pod IP and expanding it there is not supported yet", name)
			ok = false
		case !found || v == "":
			if !slices.Contains(missing, name) {
				missing = append(missing, name)
			}
		}
		return v, true
	})
	if len(missing) > 0 {
		slices.Sort(missing)
		l.fail(path, "missing value for %s", strings.Join(missing, ", "))
		ok = false
	}
	return out, ok
}

// checkRelativePath returns why p is not a relative path inside its volume,
// or "" when it is.
func checkRelativePath(p string) string {
	switch {
	case p == "":
		return "must not be empty"
	case path.IsAbs(p):
		return "must be relative"
	case slices.Contains(strings.Split(p, "/"), ".."):
		return "must not contain '..'"
	case strings.HasPrefix(p, ".."):
		return "must not start with '..'"
	}
	return ""
}

// probe lowers a probe with the API server's defaults.
func (l *lowerer) probe(path string, p *corev1.Probe, c *corev1.Container) *nodeapi.Probe {
	if p == nil {
		return nil
	}
	if p.TerminationGracePeriodSeconds != nil {
		l.fail(path+".terminationGracePeriodSeconds", "not supported")
	}
	h := &p.ProbeHandler
	n := 0
	for _, set := range []bool{h.Exec != nil, h.HTTPGet != nil, h.TCPSocket != nil, h.GRPC != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		l.fail(path, "exactly one handler is required (got %d)", n)
		return nil
	}
	out := &nodeapi.Probe{
		InitialDelaySeconds: p.InitialDelaySeconds,
		PeriodSeconds:       cmp.Or(p.PeriodSeconds, defaultProbePeriod),
		TimeoutSeconds:      cmp.Or(p.TimeoutSeconds, defaultProbeTimeout),
		SuccessThreshold:    cmp.Or(p.SuccessThreshold, defaultProbeSuccesses),
		FailureThreshold:    cmp.Or(p.FailureThreshold, defaultProbeFailures),
	}
	switch {
	case h.Exec != nil:
		// kubelet expands exec probe commands against the container's
		// literal env values only (ExpandContainerCommandOnlyStatic).
		static := map[string]string{}
		for _, v := range c.Env {
			static[v.Name] = v.Value
		}
		for _, arg := range h.Exec.Command {
			out.Exec = append(out.Exec, expand(arg, func(name string) (string, bool) {
				v, ok := static[name]
				return v, ok
			}))
		}
		if len(out.Exec) == 0 {
			l.fail(path+".exec.command", "required")
		}
	case h.HTTPGet != nil:
		out.HTTPGet = l.httpGet(path+".httpGet", h.HTTPGet, c)
	case h.TCPSocket != nil:
		port, ok := l.resolvePort(path+".tcpSocket.port", h.TCPSocket.Port, c)
		if ok {
			out.TCPSocket = &nodeapi.TCPSocketAction{Port: port, Host: h.TCPSocket.Host}
		}
	default:
		l.fail(path+".grpc", "not supported")
	}
	return out
}

func (l *lowerer) httpGet(path string, g *corev1.HTTPGetAction, c *corev1.Container) *nodeapi.HTTPGetAction {
	if g.Protocol != nil && *g.Protocol != corev1.HTTPProtocolHTTP1 {
		l.fail(path+".protocol", "%q is not supported (only HTTP1)", *g.Protocol)
	}
	port, _ := l.resolvePort(path+".port", g.Port, c)
	out := &nodeapi.HTTPGetAction{Path: cmp.Or(g.Path, "/"), Port: port, Host: g.Host, Scheme: cmp.Or(string(g.Scheme), "HTTP")}
	switch out.Scheme {
	case "HTTP", "HTTPS":
	default:
		l.fail(path+".scheme", "unsupported value %q", out.Scheme)
	}
	for _, h := range g.HTTPHeaders {
		out.Headers = append(out.Headers, nodeapi.HTTPHeader{Name: h.Name, Value: h.Value})
	}
	return out
}

// resolvePort resolves a probe or hook port like kubelet: a number, or the
// name of one of the container's ports, or a number written as a string.
func (l *lowerer) resolvePort(path string, p intstr.IntOrString, c *corev1.Container) (int32, bool) {
	port := int64(-1)
	if p.Type == intstr.Int {
		port = int64(p.IntVal)
	} else {
		found := false
		for _, cp := range c.Ports {
			if cp.Name == p.StrVal {
				port, found = int64(cp.ContainerPort), true
				break
			}
		}
		if !found {
			n, err := strconv.ParseInt(p.StrVal, 10, 32)
			if err != nil {
				l.fail(path, "no container port named %q", p.StrVal)
				return 0, false
			}
			port = n
		}
	}
	if port < 1 || port > 65535 {
		l.fail(path, "invalid port number %d", port)
		return 0, false
	}
	return int32(port), true
}

// preStop lowers the preStop hook (postStart is refused elsewhere).
func (l *lowerer) preStop(path string, lc *corev1.Lifecycle, c *corev1.Container) *nodeapi.Handler {
	if lc == nil || lc.PreStop == nil {
		return nil
	}
	path += ".preStop"
	h := lc.PreStop
	n := 0
	for _, set := range []bool{h.Exec != nil, h.HTTPGet != nil, h.TCPSocket != nil, h.Sleep != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		l.fail(path, "exactly one handler is required (got %d)", n)
		return nil
	}
	switch {
	case h.Exec != nil: // hooks are not expanded
		if len(h.Exec.Command) == 0 {
			l.fail(path+".exec.command", "required")
		}
		return &nodeapi.Handler{Exec: slices.Clone(h.Exec.Command)}
	case h.HTTPGet != nil:
		return &nodeapi.Handler{HTTPGet: l.httpGet(path+".httpGet", h.HTTPGet, c)}
	case h.Sleep != nil:
		switch {
		case h.Sleep.Seconds < 0:
			l.fail(path+".sleep.seconds", "must not be negative (got %d)", h.Sleep.Seconds)
		case h.Sleep.Seconds > 0:
			return &nodeapi.Handler{SleepSeconds: h.Sleep.Seconds}
		}
		return nil // sleeping 0 seconds is no hook at all
	default:
		l.fail(path+".tcpSocket", "not supported (Kubernetes does not run it either)")
		return nil
	}
}

func isTrue(b *bool) bool { return b != nil && *b }
