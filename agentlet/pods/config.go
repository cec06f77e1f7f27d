package pods

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"maps"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/clusterctl/clusterctl/agentlet/cri"
	"github.com/clusterctl/clusterctl/nodeapi"
)

// Container annotations agentlet sets.
const (
	// AnnotationHash is the hash of the container's spec; a running
	// container whose spec changed is restarted.
	AnnotationHash = "clusterctl.dev/container-hash"
	// AnnotationTerminationFile is the host file mounted at the container's
	// terminationMessagePath.
	AnnotationTerminationFile = "clusterctl.dev/termination-message-file"
	// AnnotationInit marks init containers.
	AnnotationInit = "clusterctl.dev/init-container"
)

// Layout locates pods' files on the host.
type Layout struct {
	PodsDir string // nodeapi.PodsDir, under the agentlet root
	LogsDir string // nodeapi.PodLogsDir, under the agentlet root
}

// PodDir is a pod's directory: volumes, termination message files, state.json.
func (l Layout) PodDir(uid string) string { return filepath.Join(l.PodsDir, uid) }

// LogDir is a pod's CRI log directory, kubelet's layout.
func (l Layout) LogDir(namespace, name, uid string) string {
	return filepath.Join(l.LogsDir, namespace+"_"+name+"_"+uid)
}

// VolumeDir is where a pod volume lives on the host.
func (l Layout) VolumeDir(uid, kind, name string) string {
	return filepath.Join(l.PodDir(uid), "volumes", kind, name)
}

// TerminationFile is the host file behind a container instance's
// terminationMessagePath.
func (l Layout) TerminationFile(uid, container string, attempt uint32) string {
	return filepath.Join(l.PodDir(uid), "containers", container, strconv.FormatUint(uint64(attempt), 10))
}

// HostsFile is the pod's /etc/hosts.
func (l Layout) HostsFile(uid string) string { return filepath.Join(l.PodDir(uid), "etc-hosts") }

// LogPath is a container instance's log file relative to the pod's log
// directory: <container>/<restartCount>.log.
func LogPath(container string, attempt uint32) string {
	return container + "/" + strconv.FormatUint(uint64(attempt), 10) + ".log"
}

func podLabels(spec *nodeapi.PodSpec) map[string]string {
	return map[string]string{
		nodeapi.LabelPodUID:       spec.UID,
		nodeapi.LabelPodName:      spec.Name,
		nodeapi.LabelPodNamespace: spec.Namespace,
	}
}

// SandboxConfig is the CRI sandbox config of a pod.
func SandboxConfig(spec *nodeapi.PodSpec, attempt uint32, l Layout, cgroupParent string) *cri.SandboxConfig {
	labels := maps.Clone(spec.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	maps.Copy(labels, podLabels(spec))
	host := spec.Hostname
	if host == "" {
		host = spec.Name
	}
	c := &cri.SandboxConfig{
		Name: spec.Name, Namespace: spec.Namespace, UID: spec.UID, Attempt: attempt,
		Hostname:     host,
		LogDirectory: l.LogDir(spec.Namespace, spec.Name, spec.UID),
		Labels:       labels,
		CgroupParent: cgroupParent,
	}
	if spec.DNS != nil {
		c.DNS = &cri.DNSConfig{Servers: spec.DNS.Nameservers, Searches: spec.DNS.Searches, Options: spec.DNS.Options}
	}
	if sc := spec.SecurityContext; sc != nil {
		c.RunAsUser, c.RunAsGroup = sc.RunAsUser, sc.RunAsGroup
		c.SupplementalGroups = supplementalGroups(sc)
	}
	for _, ct := range append(append([]nodeapi.ContainerSpec{}, spec.InitContainers...), spec.Containers...) {
		if ct.SecurityContext != nil && ct.SecurityContext.Privileged {
			c.Privileged = true
		}
		for _, p := range ct.Ports {
			if p.HostPort > 0 {
				proto := p.Protocol
				if proto == "" {
					proto = "TCP"
				}
				c.PortMappings = append(c.PortMappings, cri.PortMapping{Protocol: proto, ContainerPort: p.ContainerPort,
					HostPort: p.HostPort, HostIP: p.HostIP})
			}
		}
	}
	return c
}

func supplementalGroups(sc *nodeapi.PodSecurityContext) []int64 {
	groups := append([]int64(nil), sc.SupplementalGroups...)
	if sc.FSGroup != nil {
		groups = append(groups, *sc.FSGroup)
	}
	return groups
}

// VolumePath is a pod volume prepared on the host.
type VolumePath struct {
	Path     string
	ReadOnly bool // files volumes are always mounted read-only
	Dir      bool // subPaths below it are created as directories (emptyDir)
}

// ContainerInput is what a container's CRI config is made from besides its spec.
type ContainerInput struct {
	Attempt   uint32
	Init      bool
	PodIP     string
	Volumes   map[string]VolumePath
	HostsFile string // "" for none
}

// ContainerConfig is the CRI config of one container instance.
func ContainerConfig(spec *nodeapi.PodSpec, c *nodeapi.ContainerSpec, in ContainerInput, l Layout) (*cri.ContainerConfig, error) {
	labels := podLabels(spec)
	labels[nodeapi.LabelContainerName] = c.Name
	cc := &cri.ContainerConfig{
		Name: c.Name, Attempt: in.Attempt, Image: c.Image,
		Command: c.Command, Args: c.Args, WorkingDir: c.WorkingDir,
		Labels:      labels,
		Annotations: map[string]string{AnnotationHash: ContainerHash(c)},
		LogPath:     LogPath(c.Name, in.Attempt),
		Stdin:       c.Stdin, TTY: c.TTY,
		Resources: Resources(c.Resources),
	}
	if in.Init {
		cc.Annotations[AnnotationInit] = "true"
	}
	for _, e := range c.Env {
		switch e.FieldPath {
		case "":
			cc.Env = append(cc.Env, cri.KeyValue{Key: e.Name, Value: e.Value})
		case nodeapi.FieldPodIP:
			cc.Env = append(cc.Env, cri.KeyValue{Key: e.Name, Value: in.PodIP})
		default:
			return nil, fmt.Errorf("env %s: unsupported fieldPath %q", e.Name, e.FieldPath)
		}
	}
	mounted := map[string]bool{}
	for _, m := range c.VolumeMounts {
		vp, ok := in.Volumes[m.Name]
		if !ok {
			return nil, fmt.Errorf("volumeMount %s: volume is not prepared", m.Name)
		}
		host, err := SubPath(vp.Path, m.SubPath)
		if err != nil {
			return nil, fmt.Errorf("volumeMount %s: %w", m.Name, err)
		}
		if !path.IsAbs(m.MountPath) {
			return nil, fmt.Errorf("volumeMount %s: mountPath %q is not absolute", m.Name, m.MountPath)
		}
		cc.Mounts = append(cc.Mounts, cri.Mount{ContainerPath: m.MountPath, HostPath: host, Readonly: m.ReadOnly || vp.ReadOnly})
		mounted[path.Clean(m.MountPath)] = true
	}
	if p := c.TerminationMessagePath; p != "" && !mounted[path.Clean(p)] {
		f := l.TerminationFile(spec.UID, c.Name, in.Attempt)
		cc.Mounts = append(cc.Mounts, cri.Mount{ContainerPath: p, HostPath: f})
		cc.Annotations[AnnotationTerminationFile] = f
	}
	if in.HostsFile != "" && !mounted["/etc/hosts"] {
		cc.Mounts = append(cc.Mounts, cri.Mount{ContainerPath: "/etc/hosts", HostPath: in.HostsFile})
	}
	if sc := spec.SecurityContext; sc != nil {
		cc.RunAsUser, cc.RunAsGroup = sc.RunAsUser, sc.RunAsGroup
		cc.SupplementalGroups = supplementalGroups(sc)
	}
	if sc := c.SecurityContext; sc != nil {
		if sc.RunAsUser != nil {
			cc.RunAsUser = sc.RunAsUser
		}
		if sc.RunAsGroup != nil {
			cc.RunAsGroup = sc.RunAsGroup
		}
		cc.ReadonlyRootfs, cc.Privileged = sc.ReadOnlyRootFilesystem, sc.Privileged
	}
	return cc, nil
}

// SubPath joins a volume path and a mount's subPath, refusing absolute
// subPaths and any that climb out of the volume.
func SubPath(volume, sub string) (string, error) {
	if sub == "" {
		return volume, nil
	}
	if path.IsAbs(sub) {
		return "", fmt.Errorf("subPath %q must be relative", sub)
	}
	clean := path.Clean(sub)
	if clean == ".." || strings.HasPrefix(clean, "../") {
		return "", fmt.Errorf("subPath %q climbs out of the volume", sub)
	}
	return filepath.Join(volume, clean), nil
}

// CPU and memory conversions, kubelet's.
const (
	minShares     = 2
	maxShares     = 262144
	sharesPerCPU  = 1024
	quotaPeriod   = 100000 // µs
	minQuotaPerio = 1000   // µs
)

// Resources converts requests and limits to cgroup settings: CPU shares
// from the request (the limit when only that is set), CFS quota from the
// limit, the memory limit as is. oom_score_adj is left to the runtime.
func Resources(r nodeapi.ContainerResources) cri.Resources {
	req := r.CPURequestMillis
	if req == 0 {
		req = r.CPULimitMillis
	}
	shares := int64(minShares)
	if req > 0 {
		shares = min(max(req*sharesPerCPU/1000, minShares), maxShares)
	}
	out := cri.Resources{CPUShares: shares, MemoryLimitBytes: r.MemoryLimitBytes}
	if r.CPULimitMillis > 0 {
		out.CPUPeriod = quotaPeriod
		out.CPUQuota = max(r.CPULimitMillis*quotaPeriod/1000, minQuotaPerio)
	}
	return out
}

// ContainerHash identifies a container's spec; it changes when anything
// about the container changes.
func ContainerHash(c *nodeapi.ContainerSpec) string {
	data, _ := json.Marshal(c) // a plain struct: cannot fail
	h := fnv.New64a()
	h.Write(data)
	return strconv.FormatUint(h.Sum64(), 16)
}

// VolumesHash identifies a pod's volume definitions and file contents.
func VolumesHash(spec *nodeapi.PodSpec) string {
	var fsGroup *int64
	if spec.SecurityContext != nil {
		fsGroup = spec.SecurityContext.FSGroup
	}
	data, _ := json.Marshal(struct {
		V []nodeapi.VolumeSpec
		G *int64
	}{spec.Volumes, fsGroup})
	h := fnv.New64a()
	h.Write(data)
	return strconv.FormatUint(h.Sum64(), 16)
}

// PullPolicy decides about the image of a container about to be created:
// pull (PullAlways, or PullIfNotPresent and absent) or fail with
// ErrImageNeverPull (PullNever and absent).
func PullPolicy(policy string, present bool) (pull bool, neverPull bool) {
	switch policy {
	case nodeapi.PullAlways:
		return true, false
	case nodeapi.PullNever:
		return false, !present
	default:
		return !present, false
	}
}

// RegistryHost is the registry an image reference is pulled from, as
// Docker normalises it: "busybox" and "library/x" are docker.io.
func RegistryHost(image string) string {
	first, _, found := strings.Cut(image, "/")
	if !found || !strings.ContainsAny(first, ".:") && first != "localhost" {
		return "docker.io"
	}
	return normalizeRegistry(first)
}

func normalizeRegistry(s string) string {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "https://"), "http://")
	s, _, _ = strings.Cut(s, "/")
	switch s = strings.ToLower(s); s {
	case "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com":
		return "docker.io"
	}
	return s
}

// AuthFor picks the credential whose server is the image's registry; nil
// for none.
func AuthFor(image string, auths []nodeapi.RegistryAuth) *cri.Auth {
	host := RegistryHost(image)
	for _, a := range auths {
		if normalizeRegistry(a.Server) == host {
			return &cri.Auth{Username: a.Username, Password: a.Password, Auth: a.Auth, ServerAddress: a.Server}
		}
	}
	return nil
}

// HostsFileContent is a pod's /etc/hosts.
func HostsFileContent(hostname, podIP string) []byte {
	var b strings.Builder
	b.WriteString("# Managed by agentlet.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	b.WriteString("fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n")
	if podIP != "" {
		fmt.Fprintf(&b, "%s\t%s\n", podIP, hostname)
	}
	return []byte(b.String())
}
