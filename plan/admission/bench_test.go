package admission

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// BenchmarkControllerPass is one controller pass in a namespace with
// 10,000 running pods under a quota and a LimitRange: New over the stored
// objects, then 100 new pods admitted.
func BenchmarkControllerPass(b *testing.B) {
	stored := []runtime.Object{
		mkQuota("team", "compute", res("requests.cpu", "100000", "limits.cpu", "200000", "pods", "20000", "count/configmaps", "100")),
		mkRange("team", "limits", containerItem(func(i *corev1.LimitRangeItem) {
			i.Max, i.DefaultRequest = res("cpu", "2", "memory", "1Gi"), res("cpu", "100m", "memory", "64Mi")
		})),
	}
	for i := range 10000 {
		stored = append(stored, cpuPod("team", fmt.Sprintf("pod-%d", i), "100m", "200m", phase(corev1.PodRunning)))
	}
	b.ResetTimer()
	for range b.N {
		a := New(stored)
		for i := range 100 {
			if vs := a.Admit(mkPod("team", fmt.Sprintf("new-%d", i), []corev1.Container{ctr("app", nil, nil)})); vs != nil {
				b.Fatal(vs)
			}
		}
	}
}
