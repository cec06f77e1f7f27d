package plan

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/clusterctl/clusterctl/nodeapi"
)

// Lowering turns a Kubernetes Pod, bound to a node, into the nodeapi.PodSpec
// agentlet runs. Everything that needs a view of the cluster is resolved here,
// with kubelet's semantics: ConfigMap and Secret contents (env, envFrom,
// volumes), the downward API except the pod IP, $(VAR) expansion, named
// ports, defaults, registry credentials.
//
// A valid Pod field that would change how the pod runs but that clusterctl
// cannot honour is refused with an error naming the field: better refused
// than silently ignored.

// LowerInput holds the cluster-wide inputs of LowerPod.
type LowerInput struct {
	// ConfigMaps and Secrets are keyed by "namespace/name".
	ConfigMaps map[string]*corev1.ConfigMap
	Secrets    map[string]*corev1.Secret
	// PVCs are the claims, keyed by "namespace/name": a claim volume is
	// the claim's local directory on the node it is bound to.
	PVCs map[string]*corev1.PersistentVolumeClaim
	// ClusterDomain is the cluster's DNS domain, e.g. cluster.local.
	ClusterDomain string
	// ClusterDNS is the address of the cluster DNS server pods on this node
	// use (the node's own agentlet); empty leaves dnsPolicy ClusterFirst
	// pods with the runtime's default resolv.conf.
	ClusterDNS string
	// NodeName is the node the pod is bound to (fieldRef spec.nodeName);
	// empty means the pod's own spec.nodeName.
	NodeName string
	// HostIP is that node's address (fieldRef status.hostIP).
	HostIP string
	// NodeAllocatable is that node's allocatable resources. kubelet uses it
	// for resourceFieldRef limits.cpu and limits.memory of a container that
	// sets no limit; zero refuses such references.
	NodeAllocatable nodeapi.Resources
	// RegistryAuth are the inventory's registry credentials. They are tried
	// after those from the pod's imagePullSecrets.
	RegistryAuth []nodeapi.RegistryAuth
}

// Kubernetes defaults applied when a manifest leaves the field unset.
const (
	defaultTerminationGracePeriod = 30
	defaultTerminationMessagePath = "/dev/termination-log"
	defaultFileMode               = 0o644 // ConfigMap, downward API and projected volumes
	secretFileMode                = 0o600 // Secret volumes without a defaultMode (Kubernetes: 0644)
	defaultServiceAccount         = "default"
	maxHostnameLength             = 63
	maxFileMode                   = 0o777
	maxNameservers                = 3
	maxDNSSearches                = 32
)

// LowerPod lowers pod to the spec its node runs. It reports every problem at
// once (errors.Join), each error naming the pod and the field. The result
// passes (*nodeapi.PodSpec).Validate. pod and in are not modified and the
// result shares no memory with them.
func LowerPod(pod *corev1.Pod, in LowerInput) (nodeapi.PodSpec, error) {
	if pod == nil {
		return nodeapi.PodSpec{}, errors.New("lower pod: no pod given")
	}
	l := &lowerer{pod: pod, in: in}
	spec := l.lower()
	if len(l.errs) == 0 {
		if err := spec.Validate(); err != nil {
			l.errs = append(l.errs, fmt.Errorf("lower pod %s: %w", l.key(), err))
		}
	}
	if len(l.errs) > 0 {
		return nodeapi.PodSpec{}, errors.Join(l.errs...)
	}
	return spec, nil
}

// lowerer carries one LowerPod call: the inputs and the problems found.
type lowerer struct {
	pod  *corev1.Pod
	in   LowerInput
	errs []error
}

func (l *lowerer) key() string { return l.pod.Namespace + "/" + l.pod.Name }

// fail records a problem with the field at path. format may use %w.
func (l *lowerer) fail(path, format string, a ...any) {
	l.errs = append(l.errs, fmt.Errorf("lower pod %s: %s: "+format, append([]any{l.key(), path}, a...)...))
}

func (l *lowerer) lower() nodeapi.PodSpec {
	p := l.pod
	if p.Name == "" {
		l.fail("metadata.name", "required")
	}
	if p.Namespace == "" {
		l.fail("metadata.namespace", "required")
	}
	if p.UID == "" {
		l.fail("metadata.uid", "required")
	}
	l.refusePodFields()
	if bound := p.Spec.NodeName; bound != "" && l.in.NodeName != "" && bound != l.in.NodeName {
		l.fail("spec.nodeName", "the pod is bound to %s, not to %s it is lowered for", bound, l.in.NodeName)
	}

	spec := nodeapi.PodSpec{
		UID:                           string(p.UID),
		Namespace:                     p.Namespace,
		Name:                          p.Name,
		Labels:                        maps.Clone(p.Labels),
		Hostname:                      l.hostname(),
		RestartPolicy:                 l.restartPolicy(),
		TerminationGracePeriodSeconds: l.terminationGracePeriod(),
		SecurityContext:               l.podSecurityContext(),
		DNS:                           l.dns(),
	}
	if len(spec.Labels) == 0 {
		spec.Labels = nil
	}
	var filesVolumes map[string]bool
	spec.Volumes, filesVolumes = l.volumes()
	for i := range p.Spec.InitContainers {
		path := fmt.Sprintf("spec.initContainers[%d]", i)
		spec.InitContainers = append(spec.InitContainers, l.container(path, &p.Spec.InitContainers[i], true, filesVolumes))
	}
	for i := range p.Spec.Containers {
		path := fmt.Sprintf("spec.containers[%d]", i)
		spec.Containers = append(spec.Containers, l.container(path, &p.Spec.Containers[i], false, filesVolumes))
	}
	if len(p.Spec.Containers) == 0 {
		l.fail("spec.containers", "at least one container is required")
	}
	spec.RegistryAuth = l.registryAuth()
	return spec
}

// refusePodFields reports the pod-level fields clusterctl cannot honour.
// Scheduling fields (nodeSelector, affinity, tolerations, priority, ...) are
// the scheduler's business and are not looked at here.
func (l *lowerer) refusePodFields() {
	s := &l.pod.Spec
	refuse := func(cond bool, path, why string) {
		if cond {
			l.fail(path, "%s", why)
		}
	}
	refuse(s.HostNetwork, "spec.hostNetwork", "not supported: every pod gets its own network namespace")
	refuse(s.HostPID, "spec.hostPID", "not supported: every pod gets its own PID namespace")
	refuse(s.HostIPC, "spec.hostIPC", "not supported: every pod gets its own IPC namespace")
	refuse(s.ShareProcessNamespace != nil && *s.ShareProcessNamespace, "spec.shareProcessNamespace", "not supported")
	refuse(s.HostUsers != nil && !*s.HostUsers, "spec.hostUsers", "false (user namespaces) is not supported")
	refuse(len(s.EphemeralContainers) > 0, "spec.ephemeralContainers", "not supported")
	refuse(s.ActiveDeadlineSeconds != nil, "spec.activeDeadlineSeconds", "not supported")
	refuse(len(s.HostAliases) > 0, "spec.hostAliases", "not supported")
	refuse(len(s.ReadinessGates) > 0, "spec.readinessGates", "not supported")
	refuse(s.RuntimeClassName != nil && *s.RuntimeClassName != "", "spec.runtimeClassName", "not supported")
	refuse(s.SetHostnameAsFQDN != nil && *s.SetHostnameAsFQDN, "spec.setHostnameAsFQDN", "not supported")
	refuse(len(s.ResourceClaims) > 0, "spec.resourceClaims", "not supported (dynamic resource allocation)")
	refuse(s.Resources != nil, "spec.resources", "pod-level resources are not supported; set them per container")
	if s.OS != nil && s.OS.Name != corev1.Linux {
		l.fail("spec.os.name", "%q is not supported: nodes run linux", s.OS.Name)
	}
}

func (l *lowerer) restartPolicy() string {
	switch p := l.pod.Spec.RestartPolicy; p {
	case "":
		return nodeapi.RestartAlways
	case corev1.RestartPolicyAlways, corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever:
		return string(p)
	default:
		l.fail("spec.restartPolicy", "unsupported value %q", p)
		return ""
	}
}

func (l *lowerer) terminationGracePeriod() int64 {
	g := l.pod.Spec.TerminationGracePeriodSeconds
	switch {
	case g == nil:
		return defaultTerminationGracePeriod
	case *g < 0:
		l.fail("spec.terminationGracePeriodSeconds", "must not be negative (got %d)", *g)
		return 0
	default:
		return *g
	}
}

// hostname is kubelet's GeneratePodHostNameAndDomain: hostnameOverride, else
// spec.hostname, else the pod name, cut to 63 characters without a trailing
// '-' or '.'.
func (l *lowerer) hostname() string {
	s := &l.pod.Spec
	name, path := l.pod.Name, "metadata.name"
	switch {
	case s.HostnameOverride != nil:
		name, path = *s.HostnameOverride, "spec.hostnameOverride"
		if msgs := validation.IsDNS1123Subdomain(name); len(msgs) > 0 {
			l.fail(path, "%q is not a valid DNS subdomain: %s", name, strings.Join(msgs, "; "))
		}
	case s.Hostname != "":
		name, path = s.Hostname, "spec.hostname"
		if msgs := validation.IsDNS1123Label(name); len(msgs) > 0 {
			l.fail(path, "%q is not a valid DNS label: %s", name, strings.Join(msgs, "; "))
		}
	}
	if len(name) <= maxHostnameLength {
		return name
	}
	cut := strings.TrimRight(name[:maxHostnameLength], "-.")
	if cut == "" {
		l.fail(path, "cannot make a hostname of %q", name)
	}
	return cut
}

// dns lowers dnsPolicy and dnsConfig.
func (l *lowerer) dns() *nodeapi.DNSConfig {
	s := &l.pod.Spec
	switch s.DNSPolicy {
	case "", corev1.DNSClusterFirst, corev1.DNSClusterFirstWithHostNet:
		// kubelet: pods use the cluster DNS on their node (hostNetwork
		// pods, which would differ, are refused), with the search path
		// "<ns>.svc.<domain> svc.<domain> <domain>" and ndots:5, and
		// dnsConfig merged on top. Without a cluster DNS (no address for
		// the node) the runtime default applies.
		if l.in.ClusterDNS == "" {
			if s.DNSConfig != nil {
				l.fail("spec.dnsConfig", "not supported: the node has no cluster DNS address; use dnsPolicy None")
			}
			return nil
		}
		d := l.in.ClusterDomain
		base := &nodeapi.DNSConfig{
			Nameservers: []string{l.in.ClusterDNS},
			Searches:    []string{l.pod.Namespace + ".svc." + d, "svc." + d, d},
			Options:     []string{"ndots:5"},
		}
		if s.DNSConfig == nil {
			return base
		}
		return l.dnsConfig(base, s.DNSConfig)
	case corev1.DNSDefault:
		// The runtime's default is the host's resolv.conf, which is what
		// Default means. Merging dnsConfig into it needs the host's file.
		if s.DNSConfig != nil {
			l.fail("spec.dnsConfig", "not supported with dnsPolicy Default (it would be merged with the node's resolv.conf); use dnsPolicy None")
		}
		return nil
	case corev1.DNSNone:
		if s.DNSConfig == nil {
			l.fail("spec.dnsConfig", "required when dnsPolicy is None")
			return nil
		}
		return l.dnsConfig(&nodeapi.DNSConfig{}, s.DNSConfig)
	default:
		l.fail("spec.dnsPolicy", "unsupported value %q", s.DNSPolicy)
		return nil
	}
}

// dnsConfig is kubelet's appendDNSConfig of c onto base: nameservers and
// searches appended with duplicates dropped, an option given twice keeps
// its first position and its last value.
func (l *lowerer) dnsConfig(base *nodeapi.DNSConfig, c *corev1.PodDNSConfig) *nodeapi.DNSConfig {
	out := &nodeapi.DNSConfig{Nameservers: base.Nameservers, Searches: base.Searches}
	for i, ns := range c.Nameservers {
		if _, err := netip.ParseAddr(ns); err != nil {
			l.fail(fmt.Sprintf("spec.dnsConfig.nameservers[%d]", i), "%q is not an IP address", ns)
			continue
		}
		if !slices.Contains(out.Nameservers, ns) {
			out.Nameservers = append(out.Nameservers, ns)
		}
	}
	if len(out.Nameservers) > maxNameservers {
		l.fail("spec.dnsConfig.nameservers", "at most %d are allowed (got %d)", maxNameservers, len(out.Nameservers))
	}
	for _, s := range c.Searches {
		if !slices.Contains(out.Searches, s) {
			out.Searches = append(out.Searches, s)
		}
	}
	if len(out.Searches) > maxDNSSearches {
		l.fail("spec.dnsConfig.searches", "at most %d are allowed (got %d)", maxDNSSearches, len(out.Searches))
	}
	var names []string
	values := map[string]string{}
	for _, o := range base.Options {
		n, v, _ := strings.Cut(o, ":")
		names = append(names, n)
		values[n] = v
	}
	for i, o := range c.Options {
		if o.Name == "" {
			l.fail(fmt.Sprintf("spec.dnsConfig.options[%d].name", i), "required")
			continue
		}
		if _, seen := values[o.Name]; !seen {
			names = append(names, o.Name)
		}
		values[o.Name] = ""
		if o.Value != nil {
			values[o.Name] = *o.Value
		}
	}
	for _, n := range names {
		if v := values[n]; v != "" {
			n += ":" + v
		}
		out.Options = append(out.Options, n)
	}
	return out
}

// podSecurityContext lowers the pod-level security context. Its runAsUser,
// runAsGroup and runAsNonRoot also apply to every container that does not
// set its own (see containerSecurityContext).
func (l *lowerer) podSecurityContext() *nodeapi.PodSecurityContext {
	sc := l.pod.Spec.SecurityContext
	if sc == nil {
		return nil
	}
	const path = "spec.securityContext"
	l.refuseSecurityOptions(path, sc.SELinuxOptions, sc.SeccompProfile, sc.AppArmorProfile)
	if len(sc.Sysctls) > 0 {
		l.fail(path+".sysctls", "not supported")
	}
	if sc.SupplementalGroupsPolicy != nil && *sc.SupplementalGroupsPolicy != corev1.SupplementalGroupsPolicyMerge {
		l.fail(path+".supplementalGroupsPolicy", "%q is not supported (only Merge)", *sc.SupplementalGroupsPolicy)
	}
	// windowsOptions do not apply to Linux; fsGroupChangePolicy and
	// seLinuxChangePolicy only tune how volumes are relabelled.
	out := &nodeapi.PodSecurityContext{
		RunAsUser:          clonePtr(sc.RunAsUser),
		RunAsGroup:         clonePtr(sc.RunAsGroup),
		SupplementalGroups: slices.Clone(sc.SupplementalGroups),
		FSGroup:            clonePtr(sc.FSGroup),
	}
	if out.RunAsUser == nil && out.RunAsGroup == nil && len(out.SupplementalGroups) == 0 && out.FSGroup == nil {
		return nil
	}
	return out
}

// refuseSecurityOptions refuses the confinement options nodeapi cannot carry
// yet. Ignoring them would run the container with less confinement than asked.
func (l *lowerer) refuseSecurityOptions(path string, se *corev1.SELinuxOptions, sec *corev1.SeccompProfile, aa *corev1.AppArmorProfile) {
	if se != nil && *se != (corev1.SELinuxOptions{}) {
		l.fail(path+".seLinuxOptions", "not supported")
	}
	if sec != nil && sec.Type != corev1.SeccompProfileTypeUnconfined {
		l.fail(path+".seccompProfile", "type %s is not supported (only Unconfined)", sec.Type)
	}
	if aa != nil {
		l.fail(path+".appArmorProfile", "not supported")
	}
}

// containerSecurityContext merges the pod's and the container's security
// contexts, the container's settings winning, as kubelet does.
func (l *lowerer) containerSecurityContext(path string, c *corev1.Container) *nodeapi.ContainerSecurityContext {
	psc := l.pod.Spec.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	csc := c.SecurityContext
	if csc == nil {
		csc = &corev1.SecurityContext{}
	}
	path += ".securityContext"
	l.refuseSecurityOptions(path, csc.SELinuxOptions, csc.SeccompProfile, csc.AppArmorProfile)
	if csc.Capabilities != nil && len(csc.Capabilities.Add)+len(csc.Capabilities.Drop) > 0 {
		l.fail(path+".capabilities", "not supported")
	}
	if csc.AllowPrivilegeEscalation != nil && !*csc.AllowPrivilegeEscalation {
		l.fail(path+".allowPrivilegeEscalation", "false (no_new_privs) is not supported")
	}
	if csc.ProcMount != nil && *csc.ProcMount != corev1.DefaultProcMount {
		l.fail(path+".procMount", "%q is not supported", *csc.ProcMount)
	}
	runAsUser := firstPtr(csc.RunAsUser, psc.RunAsUser)
	runAsGroup := firstPtr(csc.RunAsGroup, psc.RunAsGroup)
	if nonRoot := firstPtr(csc.RunAsNonRoot, psc.RunAsNonRoot); nonRoot != nil && *nonRoot {
		switch {
		case runAsUser == nil:
			l.fail(path+".runAsNonRoot", "cannot be checked without runAsUser (the image's user is only known on the node); set runAsUser")
		case *runAsUser == 0:
			l.fail(path+".runAsNonRoot", "is true but runAsUser is 0")
		}
	}
	out := &nodeapi.ContainerSecurityContext{
		RunAsUser:              clonePtr(runAsUser),
		RunAsGroup:             clonePtr(runAsGroup),
		ReadOnlyRootFilesystem: csc.ReadOnlyRootFilesystem != nil && *csc.ReadOnlyRootFilesystem,
		Privileged:             csc.Privileged != nil && *csc.Privileged,
	}
	if *out == (nodeapi.ContainerSecurityContext{}) {
		return nil
	}
	return out
}

// configMap returns the ConfigMap name in the pod's namespace.
func (l *lowerer) configMap(name string) (*corev1.ConfigMap, bool) {
	cm, ok := l.in.ConfigMaps[l.pod.Namespace+"/"+name]
	return cm, ok && cm != nil
}

// secretData returns the data of Secret name in the pod's namespace, with
// stringData merged over data as the API server does on write.
func (l *lowerer) secretData(name string) (*corev1.Secret, map[string][]byte, bool) {
	s, ok := l.in.Secrets[l.pod.Namespace+"/"+name]
	if !ok || s == nil {
		return nil, nil, false
	}
	if len(s.StringData) == 0 {
		return s, s.Data, true
	}
	data := maps.Clone(s.Data)
	if data == nil {
		data = make(map[string][]byte, len(s.StringData))
	}
	for k, v := range s.StringData {
		data[k] = []byte(v)
	}
	return s, data, true
}

func (l *lowerer) objectKey(name string) string { return l.pod.Namespace + "/" + name }

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

func firstPtr[T any](ps ...*T) *T {
	for _, p := range ps {
		if p != nil {
			return p
		}
	}
	return nil
}
