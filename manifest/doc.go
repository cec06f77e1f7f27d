// Package manifest decodes Kubernetes YAML manifests strictly.
package manifest

import (
	_ "k8s.io/api/core/v1"                   // pinned for the manifest decoder
	_ "k8s.io/apimachinery/pkg/runtime/serializer" // pinned for the manifest decoder
	_ "sigs.k8s.io/yaml"                     // pinned for the manifest decoder
)
