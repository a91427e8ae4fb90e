// Package defaults fills in the fields kube-apiserver fills in before it
// validates and stores an object, so that weir stores and serves the same
// objects a Kubernetes cluster would.
//
// It covers the SetDefaults_* functions of Kubernetes' pkg/apis/*/v1 packages
// and the +default markers of k8s.io/api, for the kinds weir serves: core/v1
// Namespace, Node, Pod, Service, Endpoints, ConfigMap, Secret, Event;
// discovery/v1 EndpointSlice; coordination/v1 Lease; apps/v1 Deployment,
// ReplicaSet, DaemonSet, StatefulSet, ControllerRevision; batch/v1 Job,
// CronJob; autoscaling/v2 HorizontalPodAutoscaler; certificates/v1
// CertificateSigningRequest. It also carries the few normalisations a user sees
// from kube-apiserver's conversion to its internal types and from the registry
// strategies and default admission plugins (Secret stringData folded into
// data, Service clusterIP/clusterIPs, Namespace finalizers, Job selectors, Pod
// priority, QoS class and the default not-ready/unreachable tolerations),
// because a user cannot tell those apart from defaulting.
//
// The package owns only those rules. It must not validate (package
// validation does), allocate anything (cluster IPs and node ports belong to
// the API server), read the store, or know about legacy apiVersions (package
// conversion upgrades those first). Every function is pure: it mutates the
// object it is given and nothing else, and is safe to call concurrently on
// different objects.
package defaults
