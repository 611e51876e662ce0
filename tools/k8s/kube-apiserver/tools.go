//go:build tools

// Package tools pins the kube-apiserver main package into this module's build list.
package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
