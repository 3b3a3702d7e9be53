// Package deploy holds no Go code: it is where Artemis's deployment files
// live (Dockerfile, Kubernetes manifests, the local three-node cluster
// script). deploy_test.go checks them, so they do not rot.
package deploy
