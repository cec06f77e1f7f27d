package netfilter

import (
	"bytes"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/clusterctl/clusterctl/nodeapi"
)

// serviceFixture is a realistic input: multi-port ClusterIP with a named
// targetPort that differs per endpoint, headless, NodePort, Local policy,
// affinity, a Service without endpoints, UDP.
func serviceFixture() ServiceInput {
	ep := func(ip, node, uid string, ready bool, ports map[string]int32) nodeapi.Endpoint {
		return nodeapi.Endpoint{IP: ip, NodeName: node, PodUID: uid, Ready: ready, Ports: ports}
	}
	return ServiceInput{
		NodeName:       "h1",
		ClusterPodCIDR: netip.MustParsePrefix("10.244.0.0/16"),
		NodePodCIDR:    netip.MustParsePrefix("10.244.1.0/24"),
		ServiceCIDR:    netip.MustParsePrefix("10.96.0.0/12"),
		Unready:        map[string]bool{"uid-web-3": true},
		Services: []nodeapi.ServiceSpec{
			{Namespace: "default", Name: "web", Type: nodeapi.ServiceClusterIP, ClusterIP: "10.96.0.10",
				Ports: []nodeapi.ServicePort{{Name: "http", Protocol: "TCP", Port: 80}, {Name: "metrics", Protocol: "TCP", Port: 9090}},
				Endpoints: []nodeapi.Endpoint{
					ep("10.244.1.5", "h1", "uid-web-1", true, map[string]int32{"http": 8080, "metrics": 9100}),
					ep("10.244.2.7", "h2", "uid-web-2", true, map[string]int32{"http": 8081, "metrics": 9100}),
					ep("10.244.1.9", "h1", "uid-web-3", true, map[string]int32{"http": 8080, "metrics": 9100}), // unready locally
					ep("10.244.3.4", "h3", "uid-web-4", true, map[string]int32{"http": 8080}),                  // no metrics port
					ep("10.244.3.8", "h3", "uid-web-5", false, map[string]int32{"http": 8080, "metrics": 9100}),
				}},
			{Namespace: "default", Name: "db", Type: nodeapi.ServiceClusterIP, ClusterIP: "None",
				Ports:     []nodeapi.ServicePort{{Protocol: "TCP", Port: 5432}},
				Endpoints: []nodeapi.Endpoint{ep("10.244.2.9", "h2", "uid-db-0", true, map[string]int32{"": 5432})}},
			{Namespace: "shop", Name: "front", Type: nodeapi.ServiceNodePort, ClusterIP: "10.96.0.20", SessionAffinityTimeout: 10800,
				Ports: []nodeapi.ServicePort{{Protocol: "TCP", Port: 80, NodePort: 30080}},
				Endpoints: []nodeapi.Endpoint{
					ep("10.244.1.6", "h1", "uid-f-1", true, map[string]int32{"": 8080}),
					ep("10.244.2.6", "h2", "uid-f-2", true, map[string]int32{"": 8080}),
				}},
			{Namespace: "shop", Name: "edge", Type: nodeapi.ServiceNodePort, ClusterIP: "10.96.0.21", ExternalTrafficPolicyLocal: true,
				Ports: []nodeapi.ServicePort{{Protocol: "TCP", Port: 443, NodePort: 30443}},
				Endpoints: []nodeapi.Endpoint{
					ep("10.244.1.7", "h1", "uid-e-1", true, map[string]int32{"": 8443}),
					ep("10.244.2.8", "h2", "uid-e-2", true, map[string]int32{"": 8443}),
				}},
			{Namespace: "shop", Name: "remote-only", Type: nodeapi.ServiceNodePort, ClusterIP: "10.96.0.22", ExternalTrafficPolicyLocal: true,
				Ports:     []nodeapi.ServicePort{{Protocol: "TCP", Port: 80, NodePort: 30081}},
				Endpoints: []nodeapi.Endpoint{ep("10.244.2.10", "h2", "uid-r-1", true, map[string]int32{"": 80})}},
			{Namespace: "shop", Name: "empty", Type: nodeapi.ServiceNodePort, ClusterIP: "10.96.0.23",
				Ports: []nodeapi.ServicePort{{Protocol: "TCP", Port: 80, NodePort: 30082}}},
			{Namespace: "kube-system", Name: "dns", Type: nodeapi.ServiceClusterIP, ClusterIP: "10.96.0.53",
				Ports: []nodeapi.ServicePort{{Name: "dns", Protocol: "UDP", Port: 53}, {Name: "dns-tcp", Protocol: "TCP", Port: 53}},
				Endpoints: []nodeapi.Endpoint{
					ep("10.244.1.2", "h1", "uid-dns-1", true, map[string]int32{"dns": 53, "dns-tcp": 53}),
					ep("10.244.2.2", "h2", "uid-dns-2", true, map[string]int32{"dns": 53, "dns-tcp": 53}),
					ep("10.244.3.2", "h3", "uid-dns-3", true, map[string]int32{"dns": 53, "dns-tcp": 53}),
				}},
		},
	}
}

func TestRenderServicesGolden(t *testing.T) {
	in := serviceFixture()
	in.Current = mustParse(t, "*nat\n:PREROUTING ACCEPT [0:0]\n:CLUSTERCTL-SVC-GONEGONEGONE1 - [0:0]\n:CLUSTERCTL-FORWARD - [0:0]\n:KUBE-SVC-X - [0:0]\nCOMMIT\n")
	golden(t, "services.golden", RenderServices(in))
}

func mustParse(t testing.TB, s string) []Table {
	t.Helper()
	tables, err := ParseSave([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return tables
}

// TestServicesTargets checks every -j target is built in or declared.
func TestServicesTargets(t *testing.T) {
	payload := RenderServices(serviceFixture())
	tables := mustParse(t, string(payload))
	builtin := map[string]bool{"ACCEPT": true, "DROP": true, "RETURN": true, "REJECT": true, "DNAT": true, "MASQUERADE": true, "MARK": true}
	for _, tb := range tables {
		for _, r := range tb.Rules {
			if !Owned(r.Chain) || !tb.HasChain(r.Chain) {
				t.Errorf("%s: rule in chain %s that the payload does not declare or we do not own", tb.Name, r.Chain)
			}
			if r.Target == "" || builtin[r.Target] {
				continue
			}
			if !Owned(r.Target) || !tb.HasChain(r.Target) {
				t.Errorf("%s: %q jumps to undeclared chain %s", tb.Name, r.Line, r.Target)
			}
		}
	}
}

func TestServicesHeadlessAndLocalUnready(t *testing.T) {
	p := string(RenderServices(serviceFixture()))
	for _, bad := range []string{"10.244.2.9", "10.244.1.9", "10.244.3.8"} {
		if strings.Contains(p, bad) {
			t.Errorf("payload holds %s (headless or unready)", bad)
		}
	}
}

func TestServicesProbabilities(t *testing.T) {
	p := string(RenderServices(serviceFixture()))
	// kube-system/dns:dns has 3 endpoints: 1/3, 1/2, unconditional.
	for _, want := range []string{"--probability 0.3333333333", "--probability 0.5000000000"} {
		if !strings.Contains(p, want) {
			t.Errorf("payload lacks %s", want)
		}
	}
}

func TestDiffOneService(t *testing.T) {
	in := serviceFixture()
	prev := BuildServices(in)
	if got := Diff(prev, prev); bytes.Count(got, []byte("\n:")) != 4 {
		t.Errorf("no-change diff should only rewrite the 4 dispatch chains:\n%s", got)
	}
	// Drop one endpoint of shop/front: its SVC changes, one SEP goes.
	in.Services[2].Endpoints = in.Services[2].Endpoints[:1]
	next := BuildServices(in)
	d := string(Diff(prev, next))
	var kept []string
	for _, l := range strings.Split(d, "\n") {
		if !strings.HasPrefix(l, "-X ") {
			kept = append(kept, l)
		}
	}
	tables := mustParse(t, strings.Join(kept, "\n"))
	var declared, deleted int
	for _, tb := range tables {
		declared += len(tb.Chains)
	}
	deleted = strings.Count(d, "\n-X ")
	if deleted != 1 {
		t.Errorf("deleted %d chains, want 1:\n%s", deleted, d)
	}
	// 4 dispatch + SVC + deleted SEP.
	if declared != 6 {
		t.Errorf("declared %d chains, want 6:\n%s", declared, d)
	}
	// Applying the diff over the full render equals the full render of next.
	if full := Diff(nil, next); !bytes.Contains(full, []byte(":"+hashName(svcPrefix, "shop", "front", "", "tcp", "80"))) {
		t.Errorf("full diff lacks the front SVC chain")
	}
}

func TestHashNameLength(t *testing.T) {
	for _, p := range []string{svcPrefix, sepPrefix, xlbPrefix} {
		if n := len(hashName(p, "a")); n != 28 {
			t.Errorf("%s: len %d", p, n)
		}
	}
	if hashName(svcPrefix, "a", "b") == hashName(svcPrefix, "ab") {
		t.Error("hash parts are not separated")
	}
}

// bigInput is n services with 5 endpoints each, every fifth a NodePort.
func bigInput(n int) ServiceInput {
	in := ServiceInput{
		NodeName:       "h1",
		ClusterPodCIDR: netip.MustParsePrefix("10.244.0.0/16"),
		NodePodCIDR:    netip.MustParsePrefix("10.244.1.0/24"),
		ServiceCIDR:    netip.MustParsePrefix("10.96.0.0/12"),
	}
	for i := range n {
		s := nodeapi.ServiceSpec{Namespace: "bench", Name: fmt.Sprintf("svc-%d", i), Type: nodeapi.ServiceClusterIP,
			ClusterIP: fmt.Sprintf("10.%d.%d.%d", 96+i/65536, i/256%256, i%256),
			Ports:     []nodeapi.ServicePort{{Protocol: "TCP", Port: 80}}}
		if i%5 == 0 {
			s.Type = nodeapi.ServiceNodePort
			s.Ports[0].NodePort = int32(30000 + i%2768)
		}
		for e := range 5 {
			s.Endpoints = append(s.Endpoints, nodeapi.Endpoint{IP: fmt.Sprintf("10.244.%d.%d", e+1, i%250+2), NodeName: fmt.Sprintf("h%d", e+1), Ready: true, Ports: map[string]int32{"": int32(8000 + i%1000)}})
		}
		in.Services = append(in.Services, s)
	}
	return in
}

func BenchmarkRenderServices(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		in := bigInput(n)
		b.Run(fmt.Sprintf("full-%d", n), func(b *testing.B) {
			var size int
			for b.Loop() {
				size = len(RenderServices(in))
			}
			b.ReportMetric(float64(size), "bytes")
		})
		b.Run(fmt.Sprintf("one-change-%d", n), func(b *testing.B) {
			cache := NewServiceCache()
			next := bigInput(n)
			prev := cache.Build(next)
			var size int
			for b.Loop() {
				next.Services[n/2].Endpoints[0].Ready = !next.Services[n/2].Endpoints[0].Ready
				r := cache.Build(next)
				size = len(Diff(prev, r))
				prev = r
			}
			b.ReportMetric(float64(size), "bytes")
		})
	}
}

// TestServiceCache checks that cached builds and their diffs equal uncached
// ones, across changes, removals, unready pods and a context change.
func TestServiceCache(t *testing.T) {
	cache := NewServiceCache()
	in := serviceFixture()
	prevC, prevU := cache.Build(in), BuildServices(in)
	if diff := cmp.Diff(prevU.NAT, prevC.NAT); diff != "" {
		t.Fatalf("cached build differs (-uncached +cached):\n%s", diff)
	}
	steps := []func(in *ServiceInput){
		func(in *ServiceInput) {}, // nothing
		func(in *ServiceInput) { in.Services[0].Endpoints[1].Ready = false },
		func(in *ServiceInput) { in.Unready = map[string]bool{} },            // uid-web-3 ready again
		func(in *ServiceInput) { in.Services = in.Services[1:] },             // web gone
		func(in *ServiceInput) { in.Services[1].SessionAffinityTimeout = 0 }, // front
		func(in *ServiceInput) { in.NodeName = "h2" },
	}
	for i, step := range steps {
		in.Services = cloneServices(in.Services)
		step(&in)
		nextC, nextU := cache.Build(in), BuildServices(in)
		if diff := cmp.Diff(nextU.NAT, nextC.NAT); diff != "" {
			t.Fatalf("step %d: cached build differs:\n%s", i, diff)
		}
		got, want := Diff(prevC, nextC), Diff(prevU, nextU)
		if diff := cmp.Diff(sortedLines(want), sortedLines(got)); diff != "" {
			t.Errorf("step %d: cached diff differs:\n%s", i, diff)
		}
		prevC, prevU = nextC, nextU
	}
}

func cloneServices(s []nodeapi.ServiceSpec) []nodeapi.ServiceSpec {
	out := make([]nodeapi.ServiceSpec, len(s))
	for i := range s {
		out[i] = cloneService(&s[i])
	}
	return out
}

func sortedLines(b []byte) []string {
	l := strings.Split(string(b), "\n")
	slices.Sort(l)
	return l
}

func TestChanged(t *testing.T) {
	cache := NewServiceCache()
	in := serviceFixture()
	a := cache.Build(in)
	if Changed(a, cache.Build(in)) || Changed(BuildServices(in), BuildServices(in)) {
		t.Error("same input reported as changed")
	}
	in.Services = cloneServices(in.Services)
	in.Services[3].Endpoints[0].Ready = false
	if !Changed(a, cache.Build(in)) || !Changed(nil, a) {
		t.Error("change not reported")
	}
}

// TestFullPayloads checks the chunks together load what FullPayload loads,
// each chunk declaring every chain its rules jump to or loading it earlier.
func TestFullPayloads(t *testing.T) {
	in := serviceFixture()
	in.Current = mustParse(t, "*nat\n:CLUSTERCTL-SVC-GONEGONEGONE1 - [0:0]\n:CLUSTERCTL-FORWARD - [0:0]\nCOMMIT\n")
	r := BuildServices(in)
	chunks := FullPayloads(r, in.Current, 5)
	if len(chunks) < 4 {
		t.Fatalf("%d chunks, want several", len(chunks))
	}
	loaded := map[string]bool{}
	var all []string
	for i, c := range chunks {
		lines := strings.Split(string(c), "\n")
		var kept []string
		for _, l := range lines {
			if strings.HasPrefix(l, "-X ") {
				if i != len(chunks)-1 {
					t.Errorf("chunk %d deletes %s before the last chunk", i, l)
				}
				continue
			}
			kept = append(kept, l)
		}
		for _, tb := range mustParse(t, strings.Join(kept, "\n")) {
			for _, ch := range tb.Chains {
				loaded[tb.Name+" "+ch.Name] = true
			}
			for _, rule := range tb.Rules {
				all = append(all, tb.Name+" "+rule.Line)
				if Owned(rule.Target) && !loaded[tb.Name+" "+rule.Target] {
					t.Errorf("chunk %d: %q jumps to a chain not loaded yet", i, rule.Line)
				}
			}
		}
	}
	var want []string
	for _, tb := range mustParse(t, strings.Join(slices.DeleteFunc(strings.Split(string(FullPayload(r, in.Current)), "\n"), func(l string) bool { return strings.HasPrefix(l, "-X ") }), "\n")) {
		for _, rule := range tb.Rules {
			want = append(want, tb.Name+" "+rule.Line)
		}
	}
	slices.Sort(all)
	slices.Sort(want)
	if diff := cmp.Diff(want, all); diff != "" {
		t.Errorf("chunks differ from the full payload (-want +got):\n%s", diff)
	}
	if last := string(chunks[len(chunks)-1]); !strings.Contains(last, "-X CLUSTERCTL-SVC-GONEGONEGONE1") || strings.Contains(last, "FORWARD") {
		t.Errorf("last chunk stale handling wrong:\n%s", last)
	}
}
