package manifest

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"
	corev1 "k8s.io/api/core/v1"
)

// problems decodes src as f.yaml and returns the error's lines, or nil.
func problems(t *testing.T, src string) []string {
	t.Helper()
	objs, err := Decode("f.yaml", []byte(src))
	if err == nil {
		return nil
	}
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Decode error is %T, want *ValidationError: %v", err, err)
	}
	if objs != nil {
		t.Errorf("Decode returned %d objects with an error", len(objs))
	}
	return strings.Split(err.Error(), "\n")
}

// pod returns a minimal valid pod manifest with extra lines appended to its
// first container (indented by 6 spaces) and to its spec (2 spaces).
func pod(container, spec string) string {
	return "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n    - name: c\n      image: nginx\n" +
		indent(container, "      ") + indent(spec, "  ")
}

func indent(s, by string) string {
	if s == "" {
		return ""
	}
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	return by + strings.Join(lines, "\n"+by) + "\n"
}

func TestDecodeProblems(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // nil: valid
	}{
		// Documents.
		{"empty file", "", nil},
		{"comments and empty documents", "# nothing\n---\n---\n# still nothing\n", nil},
		{"null document", "~\n", nil},
		{"byte order mark", "\xef\xbb\xbfapiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n", nil},
		{"flow-style YAML that is not JSON", "{apiVersion: v1, kind: Namespace, metadata: {name: a}}\n", nil},
		{"content after separator",
			"apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n--- kind: Pod\n",
			[]string{`f.yaml:4: invalid document separator: only a comment may follow "---"; start the document on the next line`}},
		{"comment after separator", "--- # first\napiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n", nil},
		{"list document", "- a\n- b\n",
			[]string{"f.yaml:1: expected a Kubernetes object (a map with apiVersion, kind and metadata), got list"}},
		{"scalar document", "---\nhello\n",
			[]string{`f.yaml:2: expected a Kubernetes object (a map with apiVersion, kind and metadata), got string "hello"`}},
		{"tab indentation", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n\tname: x\n",
			[]string{"f.yaml:4: invalid YAML: found character that cannot start any token (tabs are not allowed for indentation; use spaces)"}},
		{"bad indentation points at the line that breaks the map", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n labels: {}\n",
			[]string{"f.yaml:5: invalid YAML: did not find expected key"}},
		{"syntax error in the second document", "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\na: b: c\n",
			[]string{"f.yaml:5: invalid YAML: mapping values are not allowed in this context"}},
		{"missing kind and apiVersion", "metadata: {name: a}\n",
			[]string{"f.yaml:1: apiVersion: required (e.g. apiVersion: v1)", "f.yaml:1: kind: required (e.g. kind: Pod)"}},
		{"kind not a string", "apiVersion: v1\nkind: [Pod]\n", []string{"f.yaml:2: kind: expected string, got list"}},
		{"lowercase kind", "apiVersion: v1\nkind: pod\n",
			[]string{"f.yaml:1: kind: v1 pod is not supported yet (supported: " + supportedList() + "); did you mean Pod?"}},
		{"List in a List", "apiVersion: v1\nkind: List\nitems:\n  - apiVersion: v1\n    kind: List\n",
			[]string{"f.yaml:4: items[0].kind: a List inside a List is not supported"}},
		{"empty List", "apiVersion: v1\nkind: List\nitems: []\n", nil},

		// Strict decoding and types.
		{"unknown fields at every level",
			"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  labelz: {}\ndata: {}\nextra: 1\n",
			[]string{`f.yaml:5: metadata.labelz: unknown field (did you mean "labels"?)`, "f.yaml:7: extra: unknown field"}},
		{"field names are case-sensitive", pod("Image: nginx", ""),
			[]string{`f.yaml:9: spec.containers[0].Image: unknown field (did you mean "image"?)`}},
		{"unknown field together with a type error", pod("imagePullPolicyy: Always\nports: [{containerPort: x}]", ""),
			[]string{
				`f.yaml:9: spec.containers[0].imagePullPolicyy: unknown field (did you mean "imagePullPolicy"?)`,
				`f.yaml:10: spec.containers[0].ports[0].containerPort: expected int32, got string "x"`,
			}},
		{"int32 out of range", pod("ports: [{containerPort: 99999999999}]", ""),
			[]string{"f.yaml:9: spec.containers[0].ports[0].containerPort: expected int32, got integer 99999999999 (out of range)"}},
		{"integral float for an int, as kubectl accepts", pod("ports: [{containerPort: 80.0}]", ""), nil},
		{"fraction for an int", pod("ports: [{containerPort: 80.5}]", ""),
			[]string{"f.yaml:9: spec.containers[0].ports[0].containerPort: expected int32, got number 80.5"}},
		{"YAML 1.1 boolean for a bool", pod("", "enableServiceLinks: yes"), nil},
		{"number for a label value",
			"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  labels: {version: 2}\n",
			[]string{`f.yaml:5: metadata.labels.version: expected string, got integer 2; quote it to make it a string: "2"`}},
		{"map instead of list", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: {name: c, image: x}\n",
			[]string{"f.yaml:5: spec.containers: expected list, got map"}},
		{"string instead of map", "apiVersion: v1\nkind: Pod\nmetadata: p\nspec: {containers: [{name: c, image: x}]}\n",
			[]string{`f.yaml:3: metadata: expected map, got string "p"`}},
		{"null leaves a field unset", "apiVersion: v1\nkind: Pod\nmetadata: {name: p, labels: ~}\nspec: {containers: [{name: c, image: x, command: null}]}\n", nil},
		{"port of a probe: list", pod("livenessProbe: {httpGet: {port: [80]}}", ""),
			[]string{"f.yaml:9: spec.containers[0].livenessProbe.httpGet.port: expected integer or string, got list"}},
		{"time", "apiVersion: v1\nkind: Namespace\nmetadata: {name: a, creationTimestamp: yesterday}\n",
			[]string{`f.yaml:3: metadata.creationTimestamp: invalid time "yesterday": expected RFC 3339, like 2006-01-02T15:04:05Z`}},
		{"quantity of the wrong type", pod("resources: {limits: {cpu: true}}", ""),
			[]string{"f.yaml:9: spec.containers[0].resources.limits.cpu: expected a quantity like 500m, 128Mi or 2, got boolean true"}},
		{"numeric quantities", pod("resources: {limits: {cpu: 0.5, memory: 1e9}}", ""), nil},
		{"duplicate keys", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  k: 1\n  k: 2\n",
			[]string{
				"f.yaml:6: data.k: expected string, got integer 1; quote it to make it a string: \"1\"",
				"f.yaml:7: data.k: duplicate key (first set on line 6)",
				"f.yaml:7: data.k: expected string, got integer 2; quote it to make it a string: \"2\"",
			}},
		{"anchors and merge keys",
			"apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n    - &base {name: a, image: x, imagePullPolicy: Never}\n    - <<: *base\n      name: b\n", nil},
		{"unknown field in a merged map",
			"apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n    - <<: {name: a, imagee: x}\n      image: nginx\n",
			[]string{`f.yaml:6: spec.containers[0].imagee: unknown field (did you mean "image"?)`}},

		// Metadata.
		{"name too long for a namespace",
			"apiVersion: v1\nkind: Namespace\nmetadata: {name: " + strings.Repeat("a", 64) + "}\n",
			[]string{`f.yaml:3: metadata.name: invalid name "` + strings.Repeat("a", 64) + `": must be no more than 63 characters`}},
		{"dots are fine in a ConfigMap name", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a.b}\n", nil},
		{"label key with a prefix", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, labels: {Example.com/x: z}}\n",
			[]string{"f.yaml:3: metadata.labels[Example.com/x]: invalid label key \"Example.com/x\": prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"}},
		{"namespace of a Namespace is dropped", "apiVersion: v1\nkind: Namespace\nmetadata: {name: a, namespace: NOT_CHECKED}\n", nil},

		// Pods.
		{"no containers", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {}\n",
			[]string{"f.yaml:4: spec.containers: at least one container is required"}},
		{"ports", pod("ports:\n  - {containerPort: 0}\n  - {containerPort: 80, hostPort: 70000, name: Web, hostIP: nope}\n  - {containerPort: 81, hostPort: 8080}\n  - {containerPort: 82, hostPort: 8080}", ""),
			[]string{
				"f.yaml:10: spec.containers[0].ports[0].containerPort: required",
				"f.yaml:11: spec.containers[0].ports[1].hostPort: must be between 1 and 65535, got 70000",
				`f.yaml:11: spec.containers[0].ports[1].hostIP: invalid IP address "nope"`,
				`f.yaml:11: spec.containers[0].ports[1].name: invalid port name "Web": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)`,
				"f.yaml:13: spec.containers[0].ports[3].hostPort: host port 8080/TCP is already used by spec.containers[0].ports[2]",
			}},
		{"restartPolicy and dnsPolicy", pod("", "restartPolicy: never\ndnsPolicy: None"),
			[]string{
				`f.yaml:9: spec.restartPolicy: unsupported restart policy "never" (must be Always, OnFailure or Never); did you mean Never?`,
				"f.yaml:10: spec.dnsConfig.nameservers: at least one nameserver is required when dnsPolicy is None",
			}},
		{"probes", pod("readinessProbe: {}\nlivenessProbe: {exec: {command: []}, timeoutSeconds: -1, terminationGracePeriodSeconds: 0}\nstartupProbe: {tcpSocket: {port: 0}, httpGet: {port: 70000, scheme: ftp}}", ""),
			[]string{
				"f.yaml:9: spec.containers[0].readinessProbe: must set one of exec, httpGet or tcpSocket",
				"f.yaml:10: spec.containers[0].livenessProbe.exec.command: required",
				"f.yaml:10: spec.containers[0].livenessProbe.timeoutSeconds: must be greater than or equal to 1, got -1",
				"f.yaml:10: spec.containers[0].livenessProbe.terminationGracePeriodSeconds: must be greater than or equal to 1, got 0",
				"f.yaml:11: spec.containers[0].startupProbe: may set only one of exec, httpGet or tcpSocket, found httpGet and tcpSocket",
				"f.yaml:11: spec.containers[0].startupProbe.httpGet.port: must be between 1 and 65535, got 70000",
				`f.yaml:11: spec.containers[0].startupProbe.httpGet.scheme: unsupported scheme "ftp" (must be HTTP or HTTPS)`,
				"f.yaml:11: spec.containers[0].startupProbe.tcpSocket.port: required",
			}},
		{"lifecycle", pod("lifecycle: {preStop: {sleep: {seconds: 5}}, postStart: {}}", ""),
			[]string{"f.yaml:9: spec.containers[0].lifecycle.postStart: must set one of exec, httpGet, tcpSocket or sleep"}},
		{"init containers", pod("", "initContainers:\n  - name: i\n    image: x\n    readinessProbe: {exec: {command: [true]}}\n    restartPolicy: OnFailure\n  - name: s\n    image: x\n    restartPolicy: Always\n    readinessProbe: {exec: {command: [\"true\"]}}"),
			[]string{
				`f.yaml:12: spec.initContainers[0].readinessProbe.exec.command[0]: expected string, got boolean true; quote it to make it a string: "true"`,
				"f.yaml:12: spec.initContainers[0].readinessProbe: not allowed on init containers unless restartPolicy is Always (a sidecar)",
				`f.yaml:13: spec.initContainers[0].restartPolicy: unsupported value "OnFailure": init containers allow only Always (a sidecar)`,
			}},
		{"env", pod("env:\n  - {name: A, value: x, valueFrom: {fieldRef: {fieldPath: metadata.name}}}\n  - {name: B, valueFrom: {}}\n  - {name: C, valueFrom: {fieldRef: {fieldPath: \"metadata.labels['app']\"}}}\n  - {name: D, valueFrom: {configMapKeyRef: {name: Bad_Name, key: \"a/b\"}, secretKeyRef: {name: s, key: k}}}\n  - {name: \"E=F\"}\nenvFrom:\n  - {}\n  - {secretRef: {name: s}, prefix: \"X_\"}", ""),
			[]string{
				"f.yaml:10: spec.containers[0].env[0].value: may not be set together with valueFrom",
				"f.yaml:11: spec.containers[0].env[1].valueFrom: must set one of fieldRef, configMapKeyRef or secretKeyRef",
				`f.yaml:12: spec.containers[0].env[2].valueFrom.fieldRef.fieldPath: "metadata.labels['app']" is not supported yet (supported: metadata.name, metadata.namespace, metadata.uid, status.podIP, spec.nodeName, status.hostIP, spec.serviceAccountName)`,
				"f.yaml:13: spec.containers[0].env[3].valueFrom: may set only one of fieldRef, configMapKeyRef or secretKeyRef, found configMapKeyRef and secretKeyRef",
				"f.yaml:13: spec.containers[0].env[3].valueFrom.configMapKeyRef.name: invalid ConfigMap name \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
				"f.yaml:13: spec.containers[0].env[3].valueFrom.configMapKeyRef.key: invalid key \"a/b\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name' or 'KEY_NAME' or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
				`f.yaml:14: spec.containers[0].env[4].name: invalid environment variable name "E=F": a valid environment variable name must consist only of printable ASCII characters other than '='`,
				"f.yaml:16: spec.containers[0].envFrom[0]: must set one of configMapRef or secretRef",
			}},
		{"resources", pod("resources:\n  limits: {cpu: -1, nvidia.com/gpu: 1, kubernetes.io/thing: 1}\n  requests: {cpu: 2, hugepages-2Mi: 1Mi}\n  claims: [{name: x}]", ""),
			[]string{
				"f.yaml:10: spec.containers[0].resources.limits.cpu: must be greater than or equal to 0, got -1",
				`f.yaml:10: spec.containers[0].resources.limits[kubernetes.io/thing]: unsupported resource "kubernetes.io/thing" (supported: cpu, memory, ephemeral-storage, hugepages-SIZE, or an extended resource like example.com/gpu)`,
				"f.yaml:11: spec.containers[0].resources.requests.cpu: request 2 must be less than or equal to the cpu limit -1",
				"f.yaml:12: spec.containers[0].resources.claims: not supported yet",
			}},
		{"volumes", pod("volumeMounts:\n  - {name: a, mountPath: /a, subPath: ../x}\n  - {name: b, mountPath: /a/}\n  - {mountPath: \"\"}",
			"volumes:\n  - name: a\n    hostPath: {path: relative, type: Dir}\n  - name: a\n    emptyDir: {medium: HugePages}\n  - name: B\n    secret: {secretName: s, items: [{key: k, path: /abs, mode: 01000}]}\n  - name: c\n    configMap: {}\n  - name: d\n    projected: {sources: [{serviceAccountToken: {path: t}}, {downwardAPI: {items: [{path: x, fieldRef: {fieldPath: status.podIP}}, {path: z, resourceFieldRef: {resource: limits.cpu}}]}}]}"),
			[]string{
				`f.yaml:10: spec.containers[0].volumeMounts[0].subPath: must not contain '..', got "../x"`,
				`f.yaml:11: spec.containers[0].volumeMounts[1].name: volume "b" not found in spec.volumes; did you mean "B"?`,
				`f.yaml:11: spec.containers[0].volumeMounts[1].mountPath: duplicate mount path "/a/" (also volumeMounts[0])`,
				"f.yaml:12: spec.containers[0].volumeMounts[2].name: required",
				"f.yaml:12: spec.containers[0].volumeMounts[2].mountPath: required",
				`f.yaml:15: spec.volumes[0].hostPath.path: must be an absolute path, got "relative"`,
				`f.yaml:15: spec.volumes[0].hostPath.type: unsupported hostPath type "Dir" (must be "", DirectoryOrCreate, Directory, FileOrCreate, File, Socket, CharDevice or BlockDevice)`,
				`f.yaml:16: spec.volumes[1].name: duplicate volume name "a" (also spec.volumes[0])`,
				`f.yaml:17: spec.volumes[1].emptyDir.medium: unsupported medium "HugePages" (use "" for the node's disk or Memory for tmpfs)`,
				"f.yaml:18: spec.volumes[2].name: invalid volume name \"B\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name' or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
				`f.yaml:19: spec.volumes[2].secret.items[0].path: must be a relative path, got "/abs"`,
				"f.yaml:19: spec.volumes[2].secret.items[0].mode: invalid file mode 512 (octal 01000): must be between 0 and 0777 (octal)",
				"f.yaml:21: spec.volumes[3].configMap.name: required",
				"f.yaml:23: spec.volumes[4].projected.sources[0].serviceAccountToken: projected serviceAccountToken is not supported yet (supported: configMap, secret, downwardAPI)",
				`f.yaml:23: spec.volumes[4].projected.sources[1].downwardAPI.items[0].fieldRef.fieldPath: unsupported fieldPath "status.podIP" (supported: metadata.name, metadata.namespace, metadata.uid, metadata.labels, metadata.annotations, metadata.labels['KEY'], metadata.annotations['KEY'])`,
				"f.yaml:23: spec.volumes[4].projected.sources[1].downwardAPI.items[1].resourceFieldRef: not supported yet (use fieldRef)",
			}},
		{"file mode written in decimal", pod("", "volumes: [{name: v, configMap: {name: c, defaultMode: 644}}]"),
			[]string{"f.yaml:9: spec.volumes[0].configMap.defaultMode: invalid file mode 644 (octal 01204): must be between 0 and 0777 (octal); 644 is a decimal number, write 0644 for octal"}},
		{"ephemeral containers", pod("", "ephemeralContainers: [{name: e, image: x}]"),
			[]string{"f.yaml:9: spec.ephemeralContainers: may not be set when creating a pod"}},

		// ConfigMaps and Secrets.
		{"ConfigMap key in data and binaryData", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {k: v, ..: x}\nbinaryData: {k: eA==}\n",
			[]string{
				`f.yaml:4: data[..]: invalid key "..": must not be '..'`,
				`f.yaml:5: binaryData.k: duplicate key "k": also set in data`,
			}},
		{"Secret types", "apiVersion: v1\nkind: Secret\nmetadata: {name: a}\ntype: kubernetes.io/basic-auth\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: b}\ntype: example.com/custom\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: c}\ntype: kubernetes.io/service-account-token\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: d}\ntype: kubernetes.io/ssh-auth\nstringData: {ssh-privatekey: k}\n",
			[]string{
				"f.yaml:4: data: kubernetes.io/basic-auth needs username or password",
				"f.yaml:14: type: kubernetes.io/service-account-token is not supported yet: there is no service account token controller",
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, problems(t, tt.src)); diff != "" {
				t.Errorf("problems (-want +got):\n%s\ninput:\n%s", diff, tt.src)
			}
		})
	}
}

func TestDecodeObjects(t *testing.T) {
	src := "# leading comment\n\n---\n\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Namespace\n  metadata: {name: a, namespace: x, uid: old, resourceVersion: \"7\"}\n- apiVersion: v1\n  kind: Secret\n  metadata:\n    name: s\n    namespace: a\n  stringData: {k: v}\n"
	objs, err := Decode("-", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	type id struct {
		File, APIVersion, Kind, Namespace, Name string
		Line                                    int
	}
	var got []id
	for _, o := range objs {
		got = append(got, id{o.File, o.APIVersion, o.Kind, o.Namespace, o.Name, o.Line})
	}
	want := []id{{"-", "v1", "Namespace", "", "a", 8}, {"-", "v1", "Secret", "a", "s", 11}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("objects (-want +got):\n%s", diff)
	}
	ns := objs[0].Obj.(*corev1.Namespace)
	if ns.UID != "" || ns.ResourceVersion != "" || ns.Namespace != "" {
		t.Errorf("system fields kept: uid %q, resourceVersion %q, namespace %q", ns.UID, ns.ResourceVersion, ns.Namespace)
	}
	if ns.Kind != "Namespace" || ns.APIVersion != "v1" {
		t.Errorf("TypeMeta = %+v, want v1 Namespace", ns.TypeMeta)
	}
	sec := objs[1].Obj.(*corev1.Secret)
	if string(sec.Data["k"]) != "v" || sec.StringData != nil || sec.Type != corev1.SecretTypeOpaque {
		t.Errorf("secret = data %q, stringData %v, type %q; want stringData merged into data, type Opaque", sec.Data, sec.StringData, sec.Type)
	}
}

func TestDuplicateObjects(t *testing.T) {
	src := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: x}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: a}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n"
	want := []string{`f.yaml:16: metadata.name: duplicate ConfigMap "a": first defined at f.yaml:3`}
	if diff := cmp.Diff(want, problems(t, src)); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
}

func TestProblemString(t *testing.T) {
	tests := []struct {
		p    Problem
		want string
	}{
		{Problem{File: "a.yaml", Line: 3, Field: "spec", Message: "m"}, "a.yaml:3: spec: m"},
		{Problem{File: "a.yaml", Message: "m"}, "a.yaml: m"},
		{Problem{File: "-", Line: 1, Message: "m"}, "<stdin>:1: m"},
		{Problem{Line: 2, Field: "f", Message: "m"}, "line 2: f: m"},
		{Problem{Message: "m"}, "m"},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("%+v.String() = %q, want %q", tt.p, got, tt.want)
		}
	}
	err := &ValidationError{Problems: sortProblems([]Problem{
		{File: "b", Line: 1, Message: "x"}, {File: "a", Line: 9, Message: "y"}, {File: "a", Line: 2, Message: "z"}, {File: "a", Line: 2, Message: "z"},
	})}
	if got, want := err.Error(), "a:2: z\na:9: y\nb:1: x"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestSupportedKinds(t *testing.T) {
	want := []string{"v1/Pod", "v1/ConfigMap", "v1/Secret", "v1/Namespace", "v1/Service", "v1/Endpoints", "discovery.k8s.io/v1/EndpointSlice",
		"apps/v1/Deployment", "apps/v1/ReplicaSet", "apps/v1/DaemonSet", "apps/v1/StatefulSet", "apps/v1/ControllerRevision",
		"v1/ReplicationController", "batch/v1/Job", "batch/v1/CronJob", "autoscaling/v2/HorizontalPodAutoscaler",
		"v1/PersistentVolumeClaim", "v1/PersistentVolume", "storage.k8s.io/v1/StorageClass",
		"v1/ResourceQuota", "v1/LimitRange", "policy/v1/PodDisruptionBudget"}
	got := SupportedKinds()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("SupportedKinds (-want +got):\n%s", diff)
	}
	got[0] = "changed"
	if SupportedKinds()[0] != "v1/Pod" {
		t.Error("SupportedKinds returns shared state")
	}
}

func TestDecodeJSON(t *testing.T) {
	tests := []struct {
		name, file, src string
		want            []string
	}{
		{"indented with tabs", "f.json", "{\n\t\"apiVersion\": \"v1\",\n\t\"kind\": \"ConfigMap\",\n\t\"metadata\": {\"name\": \"a\"},\n\t\"data\": {\"x\": 1}\n}\n",
			[]string{`f.json:5: data.x: expected string, got integer 1; quote it to make it a string: "1"`}},
		{"stream of values", "f.json", "{\"apiVersion\": \"v1\", \"kind\": \"Namespace\", \"metadata\": {\"name\": \"a\"}}\n\n  {\"apiVersion\": \"v1\", \"kind\": \"Namespace\", \"metadata\": {\"name\": \"b\"}, \"x\": 1}\n[1]\n",
			[]string{"f.json:3: x: unknown field", "f.json:4: expected a Kubernetes object (a map with apiVersion, kind and metadata), got list"}},
		{"syntax error in a .json file", "f.json", "{\"apiVersion\": \"v1\",\n \"kind\": \"ConfigMap\",,\n}\n",
			[]string{"f.json:2: invalid JSON: invalid character ',' looking for beginning of object key string"}},
		{"truncated", "f.json", "{\"apiVersion\": \"v1\",\n", []string{"f.json:2: invalid JSON: unexpected end of input"}},
		{"numbers are taken literally", "f.json", `{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "x", "ports": [{"containerPort": 8e1}]}]}}`,
			[]string{"f.json:1: spec.containers[0].ports[0].containerPort: expected int32, got number 8e1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(tt.file, []byte(tt.src))
			var got []string
			if err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

func TestJSONNode(t *testing.T) {
	n, err := jsonNode([]byte(`{"b": [1, "x", true, null], "a": {"c": 2.5}}`))
	if err != nil {
		t.Fatal(err)
	}
	got, err := yamlText(&n)
	if err != nil {
		t.Fatal(err)
	}
	want := "\"a\":\n    \"c\": 2.5\n\"b\":\n    - 1\n    - \"x\"\n    - true\n    - null\n"
	if got != want {
		t.Errorf("jsonNode = %q, want %q", got, want)
	}
	if _, err := jsonNode([]byte("{")); err == nil {
		t.Error("jsonNode accepted invalid JSON")
	}
}

func yamlText(n *yaml.Node) (string, error) {
	out, err := yaml.Marshal(n)
	return string(out), err
}

// supportedList is the list of kinds as error messages print it.
func supportedList() string {
	var names []string
	for _, k := range supportedKinds() {
		names = append(names, k.apiVersion+" "+k.kind)
	}
	return strings.Join(names, ", ")
}
