package manifest

import "testing"

func BenchmarkDecode(b *testing.B) {
	for _, name := range []string{"valid-pod.yaml", "invalid-many.yaml"} {
		data := readTestdata(b, name)
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				Decode(name, data)
			}
		})
	}
}
