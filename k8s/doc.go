// Package k8s holds setlist's Kubernetes manifests (base/, overlays/,
// monitoring/, jobs/) and, in its tests, the checks that every manifest
// decodes strictly into the Kubernetes API types, that each overlay builds
// with kustomize, that the Prometheus rules and the Grafana dashboard parse
// and only use metrics the binaries export, and that the Dockerfile keeps its
// promises. It has no code of its own: the tests import Prometheus, a very
// large module, and keeping them in this package means no other package's
// build compiles it.
package k8s
