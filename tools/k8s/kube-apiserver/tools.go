//go:build tools

// Package tools pins the Kubernetes main packages the test suite runs into this module's
// build list: the API server for the control plane, and the node's own components
// (kubelet, scheduler, controller-manager, kube-proxy) for the `pods` tests.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
