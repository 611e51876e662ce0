// The pod sandbox image's only program (scripts/build-images.sh): no dependencies.
module mxgate.local/tools/k8s/pause

go 1.22
