package e2e

import (
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// webServer is a pod pinned to NODE answering /cgi-bin/who with its name
// and the client address it sees; it is Ready while /tmp/ready exists.
const webServer = `apiVersion: v1
kind: Pod
metadata:
  name: NAME
  labels: {app: web}
spec:
  nodeName: NODE
  hostname: NAME
  subdomain: web-h
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: IMAGE
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "mkdir -p /www/cgi-bin && printf '#!/bin/sh\\necho Content-Type: text/plain\\necho\\necho $(hostname) $REMOTE_ADDR\\n' > /www/cgi-bin/who && chmod +x /www/cgi-bin/who && touch /tmp/ready && exec httpd -f -p 8080 -h /www"]
    ports: [{name: http, containerPort: 8080}]
    readinessProbe:
      exec: {command: ["test", "-f", "/tmp/ready"]}
      periodSeconds: 1
      failureThreshold: 1
---
`

const servicesYAML = `apiVersion: v1
kind: Namespace
metadata: {name: other}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: web-np}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http, nodePort: 30080}]
---
apiVersion: v1
kind: Service
metadata: {name: web-local}
spec:
  type: NodePort
  externalTrafficPolicy: Local
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http, nodePort: 30081}]
---
apiVersion: v1
kind: Service
metadata: {name: web-h}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{name: http, port: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  nodeName: h1
  terminationGracePeriodSeconds: 1
  containers:
  - {name: c, image: IMAGE, imagePullPolicy: IfNotPresent, command: ["sleep", "100000"]}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: other}
spec:
  nodeName: h2
  terminationGracePeriodSeconds: 1
  containers:
  - {name: c, image: IMAGE, imagePullPolicy: IfNotPresent, command: ["sleep", "100000"]}
`

// inPod runs a shell script in a pod and returns its output.
func inPod(t *testing.T, inv, ns, pod, script string) string {
	t.Helper()
	return mustOK(t, "exec", pod, "-n", ns, "--inventory", inv, "--", "sh", "-c", script).stdout
}

// who counts the answers of /cgi-bin/who by server name.
func who(out string) map[string]int {
	n := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if f := strings.Fields(line); len(f) == 2 {
			n[f[0]]++
		}
	}
	return n
}

func TestServices(t *testing.T) {
	l := podLab(t, 3)
	// A rule and a chain that are not ours, on every host: they must
	// survive every sync.
	for _, h := range []string{"h1", "h2", "h3"} {
		l.exec(t, h, "iptables -t nat -N FOREIGN-CHAIN && iptables -t nat -A POSTROUTING -s 192.0.2.0/24 -m comment --comment foreign -j RETURN")
	}
	var manifest string
	for i := 1; i <= 3; i++ {
		manifest += strings.NewReplacer("NAME", fmt.Sprintf("web-%d", i), "NODE", fmt.Sprintf("h%d", i)).Replace(webServer)
	}
	mustOK(t, "apply", "-f", writeManifest(t, "svc.yaml", manifest+servicesYAML), "-i", l.inv, "--wait", "--timeout", "2m")

	webIP := func() string {
		out := mustOK(t, "get", "svc", "web", "-i", l.inv).stdout
		m := regexp.MustCompile(`web\s+ClusterIP\s+(\S+)`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("get svc web: %s", out)
		}
		return m[1]
	}()
	podIP := func(ns, name string) string {
		r := mustOK(t, "get", "pods", name, "-n", ns, "-i", l.inv, "-o", "wide")
		m := regexp.MustCompile(`\b(10\.244\.\d+\.\d+)\b`).FindStringSubmatch(r.stdout)
		if m == nil {
			t.Fatalf("no IP for %s/%s: %s", ns, name, r)
		}
		return m[1]
	}
	clientIP := podIP("default", "client")

	t.Run("pod to pod across hosts keeps the source IP", func(t *testing.T) {
		out := inPod(t, l.inv, "default", "client", "wget -q -O - http://"+podIP("default", "web-2")+":8080/cgi-bin/who")
		if want := "web-2 [::ffff:" + clientIP + "]"; strings.TrimSpace(out) != want {
			t.Errorf("client on h1 → web-2 on h2: got %q, want %q", out, want)
		}
	})

	t.Run("ClusterIP spreads 300 requests over 3 pods on 3 hosts", func(t *testing.T) {
		out := inPod(t, l.inv, "default", "client", "for i in $(seq 300); do wget -q -O - http://"+webIP+"/cgi-bin/who; done")
		n := who(out)
		total := 0
		for _, name := range []string{"web-1", "web-2", "web-3"} {
			total += n[name]
			// Binomial(300, 1/3): mean 100, sd 8.2; 100±40 is ±4.9 sd.
			if n[name] < 60 || n[name] > 140 {
				t.Errorf("%s got %d of 300 requests, want 60..140 (fair share 100): %v", name, n[name], n)
			}
		}
		if total != 300 {
			t.Errorf("%d of 300 requests answered: %v", total, n)
		}
	})

	t.Run("NodePort from the workstation on every host", func(t *testing.T) {
		for _, h := range []string{"h1", "h2", "h3"} {
			out := httpGet(t, fmt.Sprintf("http://%s:30080/cgi-bin/who", hostAddr(t, l.inv, h)))
			if !regexp.MustCompile(`^web-[123] `).MatchString(out) {
				t.Errorf("NodePort 30080 on %s: %q", h, out)
			}
		}
		// externalTrafficPolicy Local: the node's own pod answers and sees
		// the workstation's address.
		ws := strings.TrimSuffix(l.subnet, "0/24") + "1"
		for i, h := range []string{"h1", "h2", "h3"} {
			out := httpGet(t, fmt.Sprintf("http://%s:30081/cgi-bin/who", hostAddr(t, l.inv, h)))
			if want := fmt.Sprintf("web-%d [::ffff:%s]", i+1, ws); out != want {
				t.Errorf("NodePort 30081 (Local) on %s: got %q, want %q", h, out, want)
			}
		}
	})

	t.Run("cluster DNS", func(t *testing.T) {
		upstream := startUpstreamDNS(t, strings.TrimSuffix(l.subnet, "0/24")+"1")
		// The host's resolvers are what agentlet forwards to.
		l.exec(t, "h1", "echo 'nameserver "+upstream+"' > /etc/resolv.conf")
		for _, tc := range []struct{ ns, pod, name, want string }{
			{"default", "client", "web", webIP},                                                       // short name, same namespace
			{"other", "client", "web.default.svc.cluster.local", webIP},                               // full name across namespaces
			{"default", "client", "web-2.web-h.default.svc.cluster.local", podIP("default", "web-2")}, // a pod of a headless service
			{"default", "client", "web-h.default.svc.cluster.local", "web-h"},                         // headless: every ready pod
			{"default", "client", "external.test", "192.0.2.55"},                                      // forwarded upstream
			{"other", "client", "web.other.svc.cluster.local", "NXDOMAIN"},                            // unknown name in the domain
		} {
			var out string
			eventually(t, 20*time.Second, "resolve "+tc.name, func() (bool, string) {
				r := clusterctl(t, "exec", tc.pod, "-n", tc.ns, "--inventory", l.inv, "--", "nslookup", tc.name)
				out = r.stdout + r.stderr
				switch tc.want {
				case "web-h":
					for i := 1; i <= 3; i++ {
						if !strings.Contains(out, "Address: "+podIP("default", fmt.Sprintf("web-%d", i))) {
							return false, out
						}
					}
					return true, out
				case "NXDOMAIN":
					return strings.Contains(out, "NXDOMAIN"), out
				}
				return strings.Contains(out, "Address: "+tc.want), out
			})
		}
		out := inPod(t, l.inv, "default", "client", "nslookup -type=SRV _http._tcp.web.default.svc.cluster.local || true")
		if !strings.Contains(out, "80 web.default.svc.cluster.local") {
			t.Errorf("SRV for the named port: %s", out)
		}
	})

	t.Run("an unready endpoint stops receiving traffic", func(t *testing.T) {
		inPod(t, l.inv, "default", "web-3", "rm /tmp/ready")
		eventually(t, 30*time.Second, "web-3 unready", func() (bool, string) {
			out := mustOK(t, "get", "pods", "web-3", "-i", l.inv).stdout
			return strings.Contains(out, "0/1"), out
		})
		// h3's agentlet drops its own unready endpoint at once, before
		// any reconcile: h3's Local NodePort has no endpoint left.
		eventually(t, 10*time.Second, "h3's agentlet to drop web-3 from its rules", func() (bool, string) {
			out, err := runCmd("timeout", "3", "busybox", "wget", "-q", "-O", "-", fmt.Sprintf("http://%s:30081/cgi-bin/who", hostAddr(t, l.inv, "h3")))
			return err != nil && !strings.Contains(out, "web-3"), out
		})
		// The next reconcile takes it out of every node's rules.
		if r := clusterctl(t, "reconcile", "-i", l.inv); r.code != 0 && r.code != 5 {
			t.Fatalf("reconcile: %s", r)
		}
		if out := mustOK(t, "get", "endpoints", "web", "-i", l.inv).stdout; strings.Contains(out, podIP("default", "web-3")) {
			t.Errorf("get endpoints still lists web-3:\n%s", out)
		}
		out := inPod(t, l.inv, "default", "client", "for i in $(seq 60); do wget -q -O - http://"+webIP+"/cgi-bin/who; done")
		if n := who(out); n["web-3"] != 0 || n["web-1"]+n["web-2"] != 60 {
			t.Errorf("after web-3 turned unready: %v, want 60 answers from web-1 and web-2 only", n)
		}
	})

	t.Run("rules come back after agentlet restarts and host reboots", func(t *testing.T) {
		// A reboot loses the rules and routes (the lab keeps the host's
		// network namespace, so drop ours by hand first, foreign ones stay).
		l.exec(t, "h2", "iptables-save | grep -v CLUSTERCTL | iptables-restore && ip route flush proto 108")
		if out := l.exec(t, "h2", "iptables-save; ip route"); strings.Contains(out, "CLUSTERCTL") || strings.Contains(out, "proto 108") {
			t.Fatalf("h2 still has our rules or routes:\n%s", out)
		}
		mustOK(t, l.labArgs("boot", "h2")...)
		web1 := podIP("default", "web-1")
		eventually(t, 60*time.Second, "h2's service rules and routes restored", func() (bool, string) {
			r := clusterctl(t, append(l.labArgs("exec"), "h2", "--", "sh", "-c", "iptables-save -t nat; ip route")...)
			return r.code == 0 && strings.Contains(r.stdout, "--to-destination "+web1+":8080") &&
				strings.Contains(r.stdout, "10.244.0.0/24 via "+hostAddr(t, l.inv, "h1")), r.stdout
		})
		// And service traffic through h2 works again.
		eventually(t, 30*time.Second, "NodePort on h2 after its reboot", func() (bool, string) {
			out, err := runCmd("timeout", "5", "busybox", "wget", "-q", "-O", "-", fmt.Sprintf("http://%s:30080/cgi-bin/who", hostAddr(t, l.inv, "h2")))
			return err == nil && strings.HasPrefix(out, "web-"), out
		})
	})

	t.Run("deleting services leaves none of our service chains; foreign rules survive", func(t *testing.T) {
		mustOK(t, "delete", "svc", "web", "web-np", "web-local", "web-h", "-i", l.inv)
		for _, h := range []string{"h1", "h2", "h3"} {
			eventually(t, 20*time.Second, h+" service chains gone", func() (bool, string) {
				out := l.exec(t, h, "iptables-save")
				return !regexp.MustCompile(`CLUSTERCTL-(SVC|SEP|XLB)-`).MatchString(out) && !strings.Contains(out, "30080"), out
			})
			out := l.exec(t, h, "iptables-save -t nat")
			if !strings.Contains(out, ":FOREIGN-CHAIN") || !strings.Contains(out, `-A POSTROUTING -s 192.0.2.0/24 -m comment --comment foreign -j RETURN`) {
				t.Errorf("%s lost the foreign chain or rule:\n%s", h, out)
			}
		}
	})
}

// httpGet fetches url from the workstation with busybox wget.
func httpGet(t *testing.T, url string) string {
	t.Helper()
	out, err := runCmd("timeout", "5", "busybox", "wget", "-q", "-O", "-", url)
	if err != nil {
		t.Errorf("GET %s: %v: %s", url, err, out)
	}
	return strings.TrimSpace(out)
}

// startUpstreamDNS serves external.test. A 192.0.2.55 on addr:53 (the
// workstation's lab address) for the test's length.
func startUpstreamDNS(t *testing.T, addr string) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", net.JoinHostPort(addr, "53"))
	if err != nil {
		t.Skipf("cannot serve the upstream DNS on %s:53: %v", addr, err)
	}
	mux := dns.NewServeMux()
	mux.HandleFunc(".", func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		if q := r.Question[0]; q.Name == "external.test." && q.Qtype == dns.TypeA {
			rr, _ := dns.NewRR("external.test. 60 IN A 192.0.2.55")
			m.Answer = append(m.Answer, rr)
		} else if q.Name != "external.test." {
			m.Rcode = dns.RcodeNameError
		}
		w.WriteMsg(m) //nolint:errcheck // test server
	})
	srv := &dns.Server{PacketConn: pc, Handler: mux}
	go srv.ActivateAndServe() //nolint:errcheck // stopped below
	t.Cleanup(func() { srv.Shutdown() })
	return addr
}

// runCmd runs a command on the workstation and returns its output.
func runCmd(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}
