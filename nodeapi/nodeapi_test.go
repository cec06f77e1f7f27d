package nodeapi

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

const validSpec = `{"apiVersion":"nodeapi.clusterctl.dev/v1alpha1","nodeName":"h1",
"cluster":{"name":"lab","podCIDR":"10.244.0.0/16","serviceCIDR":"10.96.0.0/12","domain":"cluster.local"},
"podCIDR":"10.244.1.0/24","generation":3,"writer":"me@laptop","writtenAt":"2026-11-21T22:00:00Z"}`

func TestDecodeNodeSpec(t *testing.T) {
	s, err := DecodeNodeSpec(strings.NewReader(validSpec))
	if err != nil {
		t.Fatal(err)
	}
	if s.NodeName != "h1" || s.Generation != 3 || s.PodCIDR != "10.244.1.0/24" {
		t.Errorf("decoded %+v", s)
	}
	for _, tc := range []struct {
		name, in string
		want     []string
	}{
		{"unknown field", strings.Replace(validSpec, `"writer"`, `"writter"`, 1), []string{`unknown field "writter"`}},
		{"trailing data", validSpec + "{}", []string{"trailing data"}},
		{"not json", "nope", []string{"decode node spec"}},
		{"every problem at once", `{"apiVersion":"v0","generation":0,"cluster":{"podCIDR":"10.244.0.0/16","serviceCIDR":"x"},"podCIDR":"10.9.0.0/24"}`,
			[]string{`apiVersion: unsupported "v0"`, "nodeName: required", "generation: must be positive", "cluster.name: required",
				"cluster.serviceCIDR", "podCIDR: 10.9.0.0/24 is not inside cluster.podCIDR 10.244.0.0/16"}},
		{"node CIDR larger than cluster", strings.Replace(validSpec, `"10.244.1.0/24"`, `"10.244.0.0/8"`, 1), []string{"is not inside"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeNodeSpec(strings.NewReader(tc.in))
			if err == nil {
				t.Fatal("want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestCheckFence(t *testing.T) {
	at := time.Date(2026, 11, 21, 22, 0, 0, 0, time.UTC)
	held := &NodeSpec{NodeName: "h1", Generation: 5, Writer: "alice@a", WrittenAt: at}
	if err := CheckFence(nil, &NodeSpec{Generation: 1}); err != nil {
		t.Errorf("empty node: %v", err)
	}
	for _, g := range []int64{5, 6} {
		if err := CheckFence(held, &NodeSpec{NodeName: "h1", Generation: g}); err != nil {
			t.Errorf("generation %d over 5: %v", g, err)
		}
	}
	err := CheckFence(held, &NodeSpec{NodeName: "h1", Generation: 4})
	var se *StaleGenerationError
	if !errors.As(err, &se) || se.Held != 5 || se.Offered != 4 {
		t.Fatalf("want StaleGenerationError, got %v", err)
	}
	for _, w := range []string{"generation 4", "holds generation 5", "alice@a", "2026-11-21T22:00:00Z", "recover"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("fence error %q lacks %q", err, w)
		}
	}
}

func TestSameContent(t *testing.T) {
	a, _ := DecodeNodeSpec(strings.NewReader(validSpec))
	b := *a
	b.Writer, b.WrittenAt = "bob@b", time.Now()
	if !SameContent(a, &b) {
		t.Error("specs differing only in writer/time should be the same content")
	}
	b.PodCIDR = "10.244.2.0/24"
	if SameContent(a, &b) || SameContent(a, nil) || !SameContent(nil, nil) {
		t.Error("SameContent too lenient")
	}
}

func TestDecodeNodeStatus(t *testing.T) {
	st, err := DecodeNodeStatus([]byte(`{"apiVersion":"nodeapi.clusterctl.dev/v1alpha1","futureField":1,
"conditions":[{"type":"Ready","status":"True"},{"type":"SandboxImageReady","status":"False","reason":"X"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if !st.Ready() {
		t.Error("Ready() = false")
	}
	if c, ok := st.Condition(ConditionSandboxImage); !ok || c.Reason != "X" {
		t.Errorf("Condition = %+v, %v", c, ok)
	}
	if _, err := DecodeNodeStatus([]byte(`{"apiVersion":"v9"}`)); err == nil {
		t.Error("unsupported apiVersion: want an error")
	}
}

// FuzzDecodeNodeSpec: decoding never panics, and whatever decodes validates.
func FuzzDecodeNodeSpec(f *testing.F) {
	f.Add(validSpec)
	f.Add(`{}`)
	f.Add(`{"podCIDR":"::/0","cluster":{"podCIDR":"::/0"}}`)
	f.Fuzz(func(t *testing.T, in string) {
		s, err := DecodeNodeSpec(strings.NewReader(in))
		if err == nil && s.Validate() != nil {
			t.Errorf("decoded spec does not validate: %+v", s)
		}
	})
}

// TestUsageJSON pins the wire names of the usage fields and that statuses
// without usage encode as before (older CLIs decode both).
func TestUsageJSON(t *testing.T) {
	at := time.Date(2026, 11, 21, 22, 0, 0, 0, time.UTC)
	st := NodeStatus{APIVersion: APIVersion,
		Usage: &NodeUsage{CPUMillis: 1500, MemoryWorkingSetBytes: 3 << 30, Timestamp: at, WindowMillis: 10000, Source: UsageSourceProc},
		Pods: []PodStatus{{UID: "u1", Usage: &PodUsage{CPUMillis: 200, MemoryWorkingSetBytes: 1 << 20, Timestamp: at, WindowMillis: 9990,
			Containers: []ContainerUsage{{Name: "web", CPUMillis: 200, MemoryWorkingSetBytes: 1 << 20}}}}, {UID: "u2"}}}
	data, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"usage":{"cpuMillis":1500,"memoryWorkingSetBytes":3221225472,"timestamp":"2026-11-21T22:00:00Z","windowMillis":10000,"source":"proc"}`,
		`"usage":{"cpuMillis":200,"memoryWorkingSetBytes":1048576,"timestamp":"2026-11-21T22:00:00Z","windowMillis":9990,` +
			`"containers":[{"name":"web","cpuMillis":200,"memoryWorkingSetBytes":1048576}]}`,
		`{"uid":"u2","namespace":"","name":"","phase":""}`,
	} {
		if !strings.Contains(string(data), want) {
			t.Errorf("encoding lacks %s:\n%s", want, data)
		}
	}
	back, err := DecodeNodeStatus(data)
	if err != nil || back.Usage.CPUMillis != 1500 || back.Pods[0].Usage.Containers[0].Name != "web" || back.Pods[1].Usage != nil {
		t.Errorf("round trip: %+v, %v", back, err)
	}
	if data, _ := json.Marshal(NodeStatus{APIVersion: APIVersion}); strings.Contains(string(data), "usage") {
		t.Errorf("a status without usage mentions it: %s", data)
	}
}
