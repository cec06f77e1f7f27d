package pods

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/clusterctl/clusterctl/agentlet/cri"
	"github.com/clusterctl/clusterctl/nodeapi"
)

func TestResources(t *testing.T) {
	tests := []struct {
		in   nodeapi.ContainerResources
		want cri.Resources
	}{
		{nodeapi.ContainerResources{}, cri.Resources{CPUShares: 2}},
		{nodeapi.ContainerResources{CPURequestMillis: 100}, cri.Resources{CPUShares: 102}},
		{nodeapi.ContainerResources{CPURequestMillis: 1}, cri.Resources{CPUShares: 2}},
		{nodeapi.ContainerResources{CPURequestMillis: 250, CPULimitMillis: 500, MemoryLimitBytes: 64 << 20},
			cri.Resources{CPUShares: 256, CPUQuota: 50000, CPUPeriod: 100000, MemoryLimitBytes: 64 << 20}},
		{nodeapi.ContainerResources{CPULimitMillis: 2000}, cri.Resources{CPUShares: 2048, CPUQuota: 200000, CPUPeriod: 100000}},
		{nodeapi.ContainerResources{CPULimitMillis: 5}, cri.Resources{CPUShares: 5, CPUQuota: 1000, CPUPeriod: 100000}},
	}
	for _, tt := range tests {
		if got := Resources(tt.in); got != tt.want {
			t.Errorf("Resources(%+v) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestSandboxConfig(t *testing.T) {
	uid, gid, fs := int64(1000), int64(1000), int64(2000)
	p := podOf("web", nodeapi.RestartAlways, "web")
	p.Labels = map[string]string{"app": "web"}
	p.Hostname = "web-0"
	p.DNS = &nodeapi.DNSConfig{Nameservers: []string{"10.96.0.10"}, Searches: []string{"default.svc.cluster.local"}, Options: []string{"ndots:5"}}
	p.SecurityContext = &nodeapi.PodSecurityContext{RunAsUser: &uid, RunAsGroup: &gid, SupplementalGroups: []int64{5}, FSGroup: &fs}
	p.Containers[0].Ports = []nodeapi.ContainerPort{{ContainerPort: 8080, HostPort: 30080}, {ContainerPort: 53, Protocol: "UDP"}}
	l := Layout{PodsDir: "/var/lib/agentlet/pods", LogsDir: "/var/log/pods"}
	got := SandboxConfig(&p, 2, l, "/kubepods/poduid-web")
	want := &cri.SandboxConfig{
		Name: "web", Namespace: "default", UID: "uid-web", Attempt: 2, Hostname: "web-0",
		LogDirectory: "/var/log/pods/default_web_uid-web",
		DNS:          &cri.DNSConfig{Servers: []string{"10.96.0.10"}, Searches: []string{"default.svc.cluster.local"}, Options: []string{"ndots:5"}},
		PortMappings: []cri.PortMapping{{Protocol: "TCP", ContainerPort: 8080, HostPort: 30080}},
		Labels: map[string]string{"app": "web", nodeapi.LabelPodUID: "uid-web", nodeapi.LabelPodName: "web",
			nodeapi.LabelPodNamespace: "default"},
		CgroupParent: "/kubepods/poduid-web", RunAsUser: &uid, RunAsGroup: &gid, SupplementalGroups: []int64{5, 2000},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("SandboxConfig (-want +got):\n%s", diff)
	}
	if p.Labels[nodeapi.LabelPodUID] != "" {
		t.Error("SandboxConfig changed the spec's labels")
	}
}

func TestContainerConfig(t *testing.T) {
	user := int64(33)
	p := podOf("web", nodeapi.RestartAlways, "web")
	c := &p.Containers[0]
	c.Command, c.Args, c.WorkingDir = []string{"httpd"}, []string{"-f"}, "/www"
	c.Env = []nodeapi.EnvVar{{Name: "A", Value: "1"}, {Name: "IP", FieldPath: nodeapi.FieldPodIP}}
	c.VolumeMounts = []nodeapi.VolumeMount{{Name: "site", MountPath: "/www"}, {Name: "data", MountPath: "/data/x", SubPath: "x", ReadOnly: true}}
	c.TerminationMessagePath = "/dev/termination-log"
	c.SecurityContext = &nodeapi.ContainerSecurityContext{RunAsUser: &user, ReadOnlyRootFilesystem: true}
	c.TTY, c.Stdin = true, true
	l := Layout{PodsDir: "/p", LogsDir: "/l"}
	in := ContainerInput{Attempt: 3, PodIP: "10.244.1.7", HostsFile: "/p/uid-web/etc-hosts", Volumes: map[string]VolumePath{
		"site": {Path: "/p/uid-web/volumes/files/site", ReadOnly: true}, "data": {Path: "/p/uid-web/volumes/empty-dir/data", Dir: true}}}
	got, err := ContainerConfig(&p, c, in, l)
	if err != nil {
		t.Fatal(err)
	}
	want := &cri.ContainerConfig{
		Name: "web", Attempt: 3, Image: "busybox:1", Command: []string{"httpd"}, Args: []string{"-f"}, WorkingDir: "/www",
		Env: []cri.KeyValue{{Key: "A", Value: "1"}, {Key: "IP", Value: "10.244.1.7"}},
		Mounts: []cri.Mount{
			{ContainerPath: "/www", HostPath: "/p/uid-web/volumes/files/site", Readonly: true},
			{ContainerPath: "/data/x", HostPath: "/p/uid-web/volumes/empty-dir/data/x", Readonly: true},
			{ContainerPath: "/dev/termination-log", HostPath: "/p/uid-web/containers/web/3"},
			{ContainerPath: "/etc/hosts", HostPath: "/p/uid-web/etc-hosts"},
		},
		Labels: map[string]string{nodeapi.LabelPodUID: "uid-web", nodeapi.LabelPodName: "web", nodeapi.LabelPodNamespace: "default",
			nodeapi.LabelContainerName: "web"},
		Annotations: map[string]string{AnnotationHash: ContainerHash(c), AnnotationTerminationFile: "/p/uid-web/containers/web/3"},
		LogPath:     "web/3.log", Stdin: true, TTY: true,
		Resources: cri.Resources{CPUShares: 2}, RunAsUser: &user, ReadonlyRootfs: true,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ContainerConfig (-want +got):\n%s", diff)
	}

	c.VolumeMounts = []nodeapi.VolumeMount{{Name: "site", MountPath: "/www", SubPath: "../etc"}}
	if _, err := ContainerConfig(&p, c, in, l); err == nil || !strings.Contains(err.Error(), "climbs out") {
		t.Errorf("subPath ..: %v", err)
	}
	c.VolumeMounts = nil
	c.Env = []nodeapi.EnvVar{{Name: "X", FieldPath: "metadata.name"}}
	if _, err := ContainerConfig(&p, c, in, l); err == nil {
		t.Error("unsupported fieldPath accepted")
	}
}

func TestImages(t *testing.T) {
	for image, want := range map[string]string{
		"busybox":                        "docker.io",
		"library/busybox:1":              "docker.io",
		"docker.io/library/busybox":      "docker.io",
		"ghcr.io/org/app:1":              "ghcr.io",
		"10.250.0.2:5000/app@sha256:abc": "10.250.0.2:5000",
		"localhost/clusterctl/pause:1":   "localhost",
		"Registry.Example.com/x":         "registry.example.com",
	} {
		if got := RegistryHost(image); got != want {
			t.Errorf("RegistryHost(%q) = %q, want %q", image, got, want)
		}
	}
	auths := []nodeapi.RegistryAuth{
		{Server: "https://index.docker.io/v1/", Username: "hub", Password: "p1"},
		{Server: "10.250.0.2:5000", Auth: "dTpw"},
	}
	if a := AuthFor("busybox", auths); a == nil || a.Username != "hub" {
		t.Errorf("docker hub auth: %+v", a)
	}
	if a := AuthFor("10.250.0.2:5000/app:1", auths); a == nil || a.Auth != "dTpw" || a.ServerAddress != "10.250.0.2:5000" {
		t.Errorf("private registry auth: %+v", a)
	}
	if a := AuthFor("ghcr.io/x/y", auths); a != nil {
		t.Errorf("no credential expected for ghcr.io: %+v", a)
	}
	for _, tt := range []struct {
		policy        string
		present       bool
		pull, neverOK bool
	}{
		{nodeapi.PullAlways, true, true, false},
		{nodeapi.PullIfNotPresent, true, false, false},
		{nodeapi.PullIfNotPresent, false, true, false},
		{nodeapi.PullNever, true, false, false},
		{nodeapi.PullNever, false, false, true},
	} {
		pull, never := PullPolicy(tt.policy, tt.present)
		if pull != tt.pull || never != tt.neverOK {
			t.Errorf("PullPolicy(%s, %v) = %v %v", tt.policy, tt.present, pull, never)
		}
	}
}

func TestHashes(t *testing.T) {
	a := podOf("p", nodeapi.RestartAlways, "c")
	b := a
	b.Containers = []nodeapi.ContainerSpec{a.Containers[0]}
	if ContainerHash(&a.Containers[0]) != ContainerHash(&b.Containers[0]) {
		t.Error("equal containers hash differently")
	}
	b.Containers[0].Args = []string{"x"}
	if ContainerHash(&a.Containers[0]) == ContainerHash(&b.Containers[0]) {
		t.Error("changed container hashes the same")
	}
	v := a
	v.Volumes = []nodeapi.VolumeSpec{{Name: "f", Files: &nodeapi.FilesVolume{Items: []nodeapi.FileItem{{Path: "a", Data: []byte("1")}}}}}
	w := v
	w.Volumes = []nodeapi.VolumeSpec{{Name: "f", Files: &nodeapi.FilesVolume{Items: []nodeapi.FileItem{{Path: "a", Data: []byte("2")}}}}}
	if VolumesHash(&v) == VolumesHash(&w) || VolumesHash(&v) != VolumesHash(&v) {
		t.Error("VolumesHash does not follow file contents")
	}
}
