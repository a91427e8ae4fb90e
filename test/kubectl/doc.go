// Package kubectl holds the real-kubectl compatibility test: it builds
// kubectl from k8s.io/kubectl (the nested module in ./kubectl, at the
// version of k8s.io/api weir serves) and runs it against a weir server
// with the admin kubeconfig. Build is exported for test/e2e, which runs
// the same kubectl against a cluster with node agents (logs, exec).
package kubectl
