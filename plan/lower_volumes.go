package plan

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/clusterctl/clusterctl/nodeapi"
)

// volumes lowers the pod's volumes. ConfigMap, Secret, downward API and
// projected volumes become FilesVolumes with their contents resolved now;
// filesVolumes names them (their mounts are read-only).
func (l *lowerer) volumes() (out []nodeapi.VolumeSpec, filesVolumes map[string]bool) {
	filesVolumes = map[string]bool{}
	for i := range l.pod.Spec.Volumes {
		v := &l.pod.Spec.Volumes[i]
		vp := fmt.Sprintf("spec.volumes[%d]", i)
		if v.Name == "" {
			l.fail(vp+".name", "required")
		}
		if sources := volumeSources(&v.VolumeSource); len(sources) != 1 {
			l.fail(vp, "exactly one volume source is required (got %s)", orNone(sources))
			continue
		}
		spec := nodeapi.VolumeSpec{Name: v.Name}
		switch {
		case v.EmptyDir != nil:
			spec.EmptyDir = l.emptyDir(vp+".emptyDir", v.EmptyDir)
		case v.HostPath != nil:
			spec.HostPath = l.hostPath(vp+".hostPath", v.HostPath)
		case v.ConfigMap != nil:
			src := v.ConfigMap
			fs := l.newFiles(vp+".configMap", src.DefaultMode, src.DefaultUser)
			fs.configMap(vp+".configMap", src.Name, src.Items, isTrue(src.Optional), fs.defaultMode)
			spec.Files = fs.volume()
		case v.Secret != nil:
			src := v.Secret
			fs := l.newFiles(vp+".secret", src.DefaultMode, src.DefaultUser)
			if src.DefaultMode == nil {
				fs.defaultMode = secretFileMode
			}
			fs.secret(vp+".secret", src.SecretName, src.Items, isTrue(src.Optional), fs.defaultMode)
			spec.Files = fs.volume()
		case v.DownwardAPI != nil:
			src := v.DownwardAPI
			fs := l.newFiles(vp+".downwardAPI", src.DefaultMode, src.DefaultUser)
			fs.downwardAPI(vp+".downwardAPI", src.Items, fs.defaultMode)
			spec.Files = fs.volume()
		case v.Projected != nil:
			spec.Files = l.projected(vp+".projected", v.Projected)
		case v.PersistentVolumeClaim != nil:
			spec.HostPath = l.claim(vp+".persistentVolumeClaim", v.PersistentVolumeClaim)
			if spec.HostPath == nil {
				continue
			}
		default:
			name := volumeSources(&v.VolumeSource)[0]
			l.fail(vp+"."+name, "%s volumes are not supported", name)
			continue
		}
		if spec.Files != nil {
			filesVolumes[v.Name] = true
		}
		out = append(out, spec)
	}
	return out, filesVolumes
}

func volumeSources(s *corev1.VolumeSource) []string { return setSources(s) }

// setSources returns the JSON names of the pointer fields set in *ptr, a
// one-of struct such as corev1.VolumeSource: new kinds of volume added to
// k8s.io/api are refused by name without a change here.
func setSources(ptr any) []string {
	var names []string
	v := reflect.ValueOf(ptr).Elem()
	for i := range v.NumField() {
		if f := v.Field(i); f.Kind() == reflect.Pointer && !f.IsNil() {
			name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("json"), ",")
			names = append(names, name)
		}
	}
	return names
}

func orNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

func (l *lowerer) emptyDir(path string, e *corev1.EmptyDirVolumeSource) *nodeapi.EmptyDirVolume {
	out := &nodeapi.EmptyDirVolume{}
	switch e.Medium {
	case corev1.StorageMediumDefault, corev1.StorageMediumMemory:
		out.Medium = string(e.Medium)
	default:
		l.fail(path+".medium", "%q is not supported (only \"\" and Memory)", e.Medium)
	}
	if e.SizeLimit != nil {
		if e.SizeLimit.Sign() < 0 {
			l.fail(path+".sizeLimit", "must not be negative (got %s)", e.SizeLimit.String())
		}
		out.SizeLimitBytes = e.SizeLimit.Value()
	}
	if e.Mode != nil {
		l.fail(path+".mode", "not supported")
	}
	return out
}

func (l *lowerer) hostPath(path string, h *corev1.HostPathVolumeSource) *nodeapi.HostPathVolume {
	out := &nodeapi.HostPathVolume{Path: h.Path}
	if !strings.HasPrefix(h.Path, "/") {
		l.fail(path+".path", "%q must be absolute", h.Path)
	}
	if h.Type != nil {
		switch t := *h.Type; t {
		case corev1.HostPathUnset, corev1.HostPathDirectoryOrCreate, corev1.HostPathDirectory,
			corev1.HostPathFileOrCreate, corev1.HostPathFile, corev1.HostPathSocket:
			out.Type = string(t)
		default:
			l.fail(path+".type", "%q is not supported", t)
		}
	}
	return out
}

// fileSet collects the files of one FilesVolume.
type fileSet struct {
	l           *lowerer
	defaultMode int32
	isSecret    bool
	files       map[string]nodeapi.FileItem
	origin      map[string]string // path → the field that wrote it
}

func (l *lowerer) newFiles(path string, defaultMode *int32, defaultUser *int64) *fileSet {
	fs := &fileSet{l: l, defaultMode: defaultFileMode, files: map[string]nodeapi.FileItem{}, origin: map[string]string{}}
	if defaultMode != nil {
		fs.defaultMode = l.fileMode(path+".defaultMode", *defaultMode)
	}
	if defaultUser != nil {
		l.fail(path+".defaultUser", "not supported")
	}
	return fs
}

func (l *lowerer) fileMode(path string, m int32) int32 {
	if m < 0 || m > maxFileMode {
		l.fail(path, "must be between 0 and 0777 (got %#o)", m)
		return defaultFileMode
	}
	return m
}

// add adds one file; field is the field that names it, for errors.
func (fs *fileSet) add(field, p string, data []byte, mode int32) {
	if msg := checkRelativePath(p); msg != "" {
		fs.l.fail(field, "path %q %s", p, msg)
		return
	}
	if prev, dup := fs.origin[p]; dup {
		fs.l.fail(field, "path %q is already written by %s", p, prev)
		return
	}
	fs.origin[p] = field
	fs.files[p] = nodeapi.FileItem{Path: p, Data: slices.Clone(data), Mode: mode}
}

// item returns the mode of a KeyToPath item and refuses its owner.
func (fs *fileSet) itemMode(field string, mode *int32, user *int64, defaultMode int32) int32 {
	if user != nil {
		fs.l.fail(field+".user", "not supported")
	}
	if mode == nil {
		return defaultMode
	}
	return fs.l.fileMode(field+".mode", *mode)
}

// keys projects data (all keys, or the items) like kubelet's MakePayload.
func (fs *fileSet) keys(path, what string, data map[string][]byte, items []corev1.KeyToPath, optional bool, defaultMode int32) {
	if len(items) == 0 {
		for _, k := range slices.Sorted(maps.Keys(data)) {
			fs.add(path, k, data[k], defaultMode)
		}
		return
	}
	for j, it := range items {
		ip := fmt.Sprintf("%s.items[%d]", path, j)
		d, ok := data[it.Key]
		if !ok {
			if !optional {
				fs.l.fail(ip+".key", "key %s not in %s", it.Key, what)
			}
			continue
		}
		fs.add(ip+".path", it.Path, d, fs.itemMode(ip, it.Mode, it.User, defaultMode))
	}
}

func (fs *fileSet) configMap(path, name string, items []corev1.KeyToPath, optional bool, defaultMode int32) {
	l := fs.l
	cm, ok := l.configMap(name)
	if !ok {
		if !optional {
			l.fail(path, "configmap %s not found", l.objectKey(name))
		}
		return
	}
	data := make(map[string][]byte, len(cm.Data)+len(cm.BinaryData))
	for k, v := range cm.Data {
		data[k] = []byte(v)
	}
	maps.Copy(data, cm.BinaryData)
	fs.keys(path, "configmap "+l.objectKey(name), data, items, optional, defaultMode)
}

func (fs *fileSet) secret(path, name string, items []corev1.KeyToPath, optional bool, defaultMode int32) {
	l := fs.l
	fs.isSecret = true
	_, data, ok := l.secretData(name)
	if !ok {
		if !optional {
			l.fail(path, "secret %s not found", l.objectKey(name))
		}
		return
	}
	fs.keys(path, "secret "+l.objectKey(name), data, items, optional, defaultMode)
}

func (fs *fileSet) downwardAPI(path string, items []corev1.DownwardAPIVolumeFile, defaultMode int32) {
	for j := range items {
		it := &items[j]
		ip := fmt.Sprintf("%s.items[%d]", path, j)
		var value string
		switch {
		case it.FieldRef != nil && it.ResourceFieldRef != nil:
			fs.l.fail(ip, "exactly one of fieldRef and resourceFieldRef is allowed")
			continue
		case it.FieldRef != nil:
			v, ok := fs.l.fieldRef(ip+".fieldRef", it.FieldRef, true)
			if !ok {
				continue
			}
			value = v.value
		case it.ResourceFieldRef != nil:
			v, ok := fs.l.resourceFieldRef(ip+".resourceFieldRef", it.ResourceFieldRef, nil)
			if !ok {
				continue
			}
			value = v
		default:
			fs.l.fail(ip, "one of fieldRef and resourceFieldRef is required")
			continue
		}
		fs.add(ip+".path", it.Path, []byte(value), fs.itemMode(ip, it.Mode, it.User, defaultMode))
	}
}

func (l *lowerer) projected(path string, p *corev1.ProjectedVolumeSource) *nodeapi.FilesVolume {
	fs := l.newFiles(path, p.DefaultMode, p.DefaultUser)
	for j := range p.Sources {
		src := &p.Sources[j]
		sp := fmt.Sprintf("%s.sources[%d]", path, j)
		if names := projectionSources(src); len(names) != 1 {
			l.fail(sp, "exactly one projection source is required (got %s)", orNone(names))
			continue
		}
		switch {
		case src.ConfigMap != nil:
			fs.configMap(sp+".configMap", src.ConfigMap.Name, src.ConfigMap.Items, isTrue(src.ConfigMap.Optional), fs.defaultMode)
		case src.Secret != nil:
			fs.secret(sp+".secret", src.Secret.Name, src.Secret.Items, isTrue(src.Secret.Optional), fs.defaultMode)
		case src.DownwardAPI != nil:
			fs.downwardAPI(sp+".downwardAPI", src.DownwardAPI.Items, fs.defaultMode)
		default:
			name := projectionSources(src)[0]
			l.fail(sp+"."+name, "%s projections are not supported", name)
		}
	}
	return fs.volume()
}

func projectionSources(p *corev1.VolumeProjection) []string { return setSources(p) }

// volume returns the files sorted by path.
func (fs *fileSet) volume() *nodeapi.FilesVolume {
	out := &nodeapi.FilesVolume{Secret: fs.isSecret, Items: []nodeapi.FileItem{}}
	for _, p := range slices.Sorted(maps.Keys(fs.files)) {
		out.Items = append(out.Items, fs.files[p])
	}
	return out
}

// LocalVolumeDir is where the built-in local-path provisioner keeps the
// directory of a claim on its node: one per claim UID, so a claim deleted
// and created again starts empty.
const LocalVolumeDir = "/var/lib/clusterctl/volumes"

// LocalVolumePath is the directory of a claim on its node.
func LocalVolumePath(namespace, name, uid string) string {
	return LocalVolumeDir + "/" + namespace + "_" + name + "_" + uid
}

// SelectedNodeAnnotation is set on a claim bound to a node by the local-path
// provisioner (the annotation Kubernetes' volume scheduling uses).
const SelectedNodeAnnotation = "volume.kubernetes.io/selected-node"

// claim lowers a persistentVolumeClaim volume to the claim's directory on
// this node; the claim must exist and be bound to this node.
func (l *lowerer) claim(path string, src *corev1.PersistentVolumeClaimVolumeSource) *nodeapi.HostPathVolume {
	pvc, ok := l.in.PVCs[l.pod.Namespace+"/"+src.ClaimName]
	switch {
	case !ok:
		l.fail(path+".claimName", "persistentvolumeclaim %q not found", src.ClaimName)
		return nil
	case pvc.Annotations[SelectedNodeAnnotation] == "":
		l.fail(path+".claimName", "persistentvolumeclaim %q is not bound yet", src.ClaimName)
		return nil
	case pvc.Annotations[SelectedNodeAnnotation] != l.nodeName():
		l.fail(path+".claimName", "persistentvolumeclaim %q is bound to node %s, not %s", src.ClaimName, pvc.Annotations[SelectedNodeAnnotation], l.nodeName())
		return nil
	}
	return &nodeapi.HostPathVolume{Path: LocalVolumePath(pvc.Namespace, pvc.Name, string(pvc.UID)), Type: string(corev1.HostPathDirectoryOrCreate)}
}

// nodeName is the node the pod is lowered for.
func (l *lowerer) nodeName() string {
	if l.in.NodeName != "" {
		return l.in.NodeName
	}
	return l.pod.Spec.NodeName
}
