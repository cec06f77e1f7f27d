package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clusterctl/clusterctl/inventory"
)

const recoverAppsYAML = `apiVersion: v1
kind: ConfigMap
metadata: {name: web-content}
data: {index.html: recovered}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: IMAGE
        imagePullPolicy: IfNotPresent
        command: ["httpd", "-f", "-p", "8080", "-h", "/www"]
        readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1}
        volumeMounts: [{name: content, mountPath: /www}]
      volumes: [{name: content, configMap: {name: web-content}}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: scratch}
spec:
  selector: {app: nothing}
  ports: [{port: 81}]
`

const recoverDBYAML = `apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  replicas: 1
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: db
        image: IMAGE
        imagePullPolicy: IfNotPresent
        command: ["sh", "-c", "date >> /data/boots; exec sleep 100000"]
        readinessProbe: {exec: {command: [test, -f, /data/boots]}, periodSeconds: 1}
        volumeMounts: [{name: data, mountPath: /data}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
`

type historyJSON struct {
	Items []struct {
		Generation int64     `json:"generation"`
		Time       time.Time `json:"time"`
		Writer     string    `json:"writer"`
		Command    []string  `json:"command"`
		Changes    []struct {
			Action, Kind, Name string
		} `json:"changes"`
		Hosts []string `json:"hosts"`
	} `json:"items"`
}

// TestRecoverAndHistory loses the inventory's state after real work
// (a Deployment with a ConfigMap volume, a NodePort Service, a StatefulSet
// with a local-path claim) and rebuilds it from the hosts: the recovered
// state is the one lost, and a reconcile with it changes nothing. The
// hosts' audit trail lists every change in order.
func TestRecoverAndHistory(t *testing.T) {
	l := podLab(t, 2)
	apps := writeManifest(t, "apps.yaml", recoverAppsYAML)
	db := writeManifest(t, "db.yaml", recoverDBYAML)
	mustOK(t, "apply", "-f", apps, "-i", l.inv)
	mustOK(t, "apply", "-f", db, "-i", l.inv)
	mustOK(t, "delete", "service", "scratch", "-i", l.inv)
	until(t, l.inv, 4*time.Minute, "web and db ready", func() (bool, string) {
		pods := podsOf(t, l.inv, "")
		ready := 0
		var states []string
		for _, p := range pods {
			ok := p.Status.Phase == "Running" && len(p.Status.ContainerStatuses) > 0 && p.Status.ContainerStatuses[0].Ready
			if ok {
				ready++
			}
			states = append(states, p.Metadata.Name+"="+p.Status.Phase)
		}
		return ready == 3 && len(pods) == 3, strings.Join(states, " ")
	})
	// Converged: endpoints of the ready pods pushed, statuses recorded.
	eventually(t, time.Minute, "converged", func() (bool, string) {
		r := clusterctl(t, "reconcile", "-i", l.inv)
		return r.code == 0, r.String()
	})

	t.Run("history", func(t *testing.T) {
		r := mustOK(t, "history", "-i", l.inv, "-o", "json", "--limit", "0")
		var h historyJSON
		if err := json.Unmarshal([]byte(r.stdout), &h); err != nil {
			t.Fatalf("history -o json: %v\n%s", err, r)
		}
		find := func(prefix ...string) int64 {
			t.Helper()
			for _, it := range h.Items {
				if len(it.Command) >= len(prefix) && slices.Equal(it.Command[:len(prefix)], prefix) {
					if it.Writer == "" || !strings.Contains(it.Writer, "@") || !slices.Equal(it.Hosts, []string{"h1", "h2"}) {
						t.Errorf("record %v: writer %q, hosts %v; want user@host on h1 and h2", it.Command, it.Writer, it.Hosts)
					}
					return it.Generation
				}
			}
			t.Fatalf("no record of %q in:\n%s", prefix, r.stdout)
			return 0
		}
		g1 := find("clusterctl", "apply", "-f", apps)
		g2 := find("clusterctl", "apply", "-f", db)
		g3 := find("clusterctl", "delete", "service", "scratch")
		if !(0 < g1 && g1 < g2 && g2 < g3) {
			t.Errorf("generations apply %d, apply %d, delete %d: want increasing", g1, g2, g3)
		}
		for i := 1; i < len(h.Items); i++ {
			a, b := h.Items[i-1], h.Items[i]
			if a.Generation < b.Generation || (a.Generation == b.Generation && a.Time.Before(b.Time)) {
				t.Errorf("history not newest first at %d: generation %d then %d", i, a.Generation, b.Generation)
			}
		}
		table := mustOK(t, "history", "-i", l.inv, "--limit", "3").stdout
		t.Logf("clusterctl history --limit 3:\n%s", table)
		lines := strings.Split(strings.TrimSpace(table), "\n")
		if len(lines) != 4 || !strings.HasPrefix(lines[0], "GENERATION") {
			t.Errorf("history --limit 3 table:\n%s", table)
		}
	})

	t.Run("recover", func(t *testing.T) {
		lost, err := inventory.Load(l.inv)
		if err != nil {
			t.Fatal(err)
		}
		podsBefore := podSummary(t, l.inv)
		// The inventory is lost: a new file with the user's part only
		// (same directory: its ssh paths are relative).
		data, err := os.ReadFile(l.inv)
		if err != nil {
			t.Fatal(err)
		}
		user, _, ok := bytes.Cut(data, []byte(inventory.StateComment))
		if !ok {
			t.Fatalf("no state: in the inventory:\n%s", data)
		}
		fresh := filepath.Join(filepath.Dir(l.inv), "new.yaml")
		if err := os.WriteFile(fresh, user, 0o600); err != nil {
			t.Fatal(err)
		}
		r := mustOK(t, "recover", "-i", fresh)
		t.Logf("clusterctl recover:\n%s%s", r.stdout, r.stderr)
		want := "recovered generation " + strconv.FormatInt(lost.State.Generation, 10) + " from h"
		if !strings.Contains(r.stdout, want) || !regexp.MustCompile(`objects: \d+ \(.*ConfigMap.*Deployment.*StatefulSet`).MatchString(r.stdout) {
			t.Errorf("recover output lacks %q and a count of objects by kind:\n%s", want, r)
		}
		got, err := inventory.Load(fresh)
		if err != nil {
			t.Fatal(err)
		}
		if a, b := stateJSON(t, lost), stateJSON(t, got); a != b {
			t.Errorf("recovered state differs from the lost one:\nlost:\n%s\nrecovered:\n%s", a, b)
		}
		r = clusterctl(t, "reconcile", "-i", fresh)
		if r.code != 0 || !strings.Contains(r.stdout, "converged") {
			t.Errorf("reconcile after recover: want exit 0, converged:\n%s", r)
		}
		t.Logf("pods:\n%s", podsBefore)
		if after := podSummary(t, fresh); after != podsBefore {
			t.Errorf("get pods after recover:\n%s\nbefore:\n%s", after, podsBefore)
		}
		// The file now has state: recovering again must be confirmed.
		if r := clusterctl(t, "recover", "-i", fresh, "--from", "h2"); r.code != 2 || !strings.Contains(r.stderr, "--yes") {
			t.Errorf("recover over existing state without --yes: want exit 2 asking for --yes:\n%s", r)
		}
		mustOK(t, "recover", "-i", fresh, "--from", "h2", "--yes")
	})
}

// stateJSON renders an inventory's state (objects by content) for
// comparison.
func stateJSON(t *testing.T, inv *inventory.Inventory) string {
	t.Helper()
	data, err := inv.Snapshot().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var s inventory.Snapshot
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	out, err := json.MarshalIndent(s.State, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// podSummary is every pod's name, node and phase, sorted.
func podSummary(t *testing.T, inv string) string {
	t.Helper()
	var rows []string
	for _, p := range podsOf(t, inv, "") {
		rows = append(rows, p.Metadata.Name+" "+p.Spec.NodeName+" "+p.Status.Phase)
	}
	slices.Sort(rows)
	return strings.Join(rows, "\n")
}
