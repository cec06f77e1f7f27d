// Package manifest decodes Kubernetes manifests (YAML or JSON; several
// documents per file; kind: List) into typed k8s.io/api objects, strictly and
// with every problem reported at once as FILE:LINE: field.path: message.
//
// Decoding follows what kubectl and the API server would do with the same
// bytes: documents are split on "---" lines and decoded with apimachinery's
// strict UniversalDeserializer (so unknown fields, duplicate keys and wrong
// types are errors), then defaulted the way the API server defaults (see
// defaults.go; k8s.io/kubernetes is not importable, so the relevant subset is
// written out by hand) and validated with a focused subset of the API
// server's validation (see validate.go), enough that bad input is caught
// before anything reaches a host. Error locations come from a second parse of
// each document with gopkg.in/yaml.v3, whose nodes carry line numbers.
//
// Decode, Encode and DecodeStored are pure: they do no I/O and never read the
// clock. Read is the edge that reads files, directories and stdin.
//
// The supported kinds are v1 Pod, ConfigMap, Secret and Namespace, plus v1
// List as a container of them. Everything else is rejected with a message
// saying it is not supported yet.
package manifest
