"""A real Kubernetes control plane (etcd + kube-apiserver on loopback) for the test suite.

Loaded for the whole suite as a pytest plugin (`-p kubeplane.plugin` in pyproject). It
provides fixtures only; it must not hold product logic or talk to any non-loopback host.
"""
