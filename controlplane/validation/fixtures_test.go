package validation

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"weir.dev/weir/controlplane/defaults"
)

// Fixtures: the smallest valid object of every kind, defaulted as the API
// server would before validating. Each call returns a fresh object that a
// test may change.

var webLabels = map[string]string{"app": "web"}

func objMeta(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name), ResourceVersion: "1"}
}

func podTemplate(labels map[string]string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx:1.27"}}},
	}
}

func withDefaults[T runtime.Object](obj T) T {
	defaults.Default(obj)
	return obj
}

func validPod() *corev1.Pod {
	return withDefaults(&corev1.Pod{
		ObjectMeta: objMeta("web-0"),
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name:  "app",
				Image: "nginx:1.27",
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
				Env:   []corev1.EnvVar{{Name: "MODE", Value: "prod"}},
				VolumeMounts: []corev1.VolumeMount{
					{Name: "cfg", MountPath: "/etc/app"},
				},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intOrStr("http")}}},
			}},
			Volumes: []corev1.Volume{{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: "web-config"},
			}}}},
		},
	})
}

func validService() *corev1.Service {
	return withDefaults(&corev1.Service{
		ObjectMeta: objMeta("web"),
		Spec: corev1.ServiceSpec{
			Selector:  webLabels,
			ClusterIP: "10.96.0.10",
			Ports:     []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intOrStr("http")}},
		},
	})
}

func validNamespace() *corev1.Namespace {
	return withDefaults(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a", UID: "uid-ns"}})
}

func validNode() *corev1.Node {
	return withDefaults(&corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "node-1.weir.local", UID: "uid-node"},
		Spec: corev1.NodeSpec{
			PodCIDR: "10.244.1.0/24",
			Taints:  []corev1.Taint{{Key: "node-role.kubernetes.io/control-plane", Effect: corev1.TaintEffectNoSchedule}},
		},
	})
}

func validEndpoints() *corev1.Endpoints {
	return withDefaults(&corev1.Endpoints{
		ObjectMeta: objMeta("web"),
		Subsets: []corev1.EndpointSubset{{
			Addresses: []corev1.EndpointAddress{{IP: "10.244.1.5"}},
			Ports:     []corev1.EndpointPort{{Name: "http", Port: 8080}},
		}},
	})
}

func validConfigMap() *corev1.ConfigMap {
	return withDefaults(&corev1.ConfigMap{ObjectMeta: objMeta("web-config"), Data: map[string]string{"app.conf": "x=1"}})
}

func validSecret() *corev1.Secret {
	return withDefaults(&corev1.Secret{ObjectMeta: objMeta("creds"), StringData: map[string]string{"password": "s3cret"}})
}

func validEvent() *corev1.Event {
	return withDefaults(&corev1.Event{
		ObjectMeta:     objMeta("web-0.17a8b"),
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web-0"},
		Reason:         "Started",
		Message:        "Started container app",
		Type:           corev1.EventTypeNormal,
	})
}

func validEndpointSlice() *discoveryv1.EndpointSlice {
	return withDefaults(&discoveryv1.EndpointSlice{
		ObjectMeta:  objMeta("web-abc12"),
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{
			Addresses: []string{"10.244.1.5"},
			NodeName:  new("node-1"),
		}},
		Ports: []discoveryv1.EndpointPort{{Name: new("http"), Port: new(int32(8080))}},
	})
}

func validLease() *coordinationv1.Lease {
	l := &coordinationv1.Lease{
		ObjectMeta: objMeta("node-1"),
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: new("node-1"), LeaseDurationSeconds: new(int32(40))},
	}
	l.Namespace = "kube-node-lease"
	return withDefaults(l)
}

func validDeployment() *appsv1.Deployment {
	return withDefaults(&appsv1.Deployment{
		ObjectMeta: objMeta("web"),
		Spec: appsv1.DeploymentSpec{
			Replicas: new(int32(3)),
			Selector: &metav1.LabelSelector{MatchLabels: webLabels},
			Template: podTemplate(webLabels),
		},
	})
}

func validReplicaSet() *appsv1.ReplicaSet {
	return withDefaults(&appsv1.ReplicaSet{
		ObjectMeta: objMeta("web-7d9f"),
		Spec: appsv1.ReplicaSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: webLabels},
			Template: podTemplate(webLabels),
		},
	})
}

func validDaemonSet() *appsv1.DaemonSet {
	return withDefaults(&appsv1.DaemonSet{
		ObjectMeta: objMeta("agent"),
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: webLabels},
			Template: podTemplate(webLabels),
		},
	})
}

func validStatefulSet() *appsv1.StatefulSet {
	t := podTemplate(webLabels)
	t.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
	return withDefaults(&appsv1.StatefulSet{
		ObjectMeta: objMeta("db"),
		Spec: appsv1.StatefulSetSpec{
			ServiceName:          "db",
			Selector:             &metav1.LabelSelector{MatchLabels: webLabels},
			Template:             t,
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "data"}}},
		},
	})
}

func validControllerRevision() *appsv1.ControllerRevision {
	return withDefaults(&appsv1.ControllerRevision{
		ObjectMeta: objMeta("web-5c9b"),
		Data:       runtime.RawExtension{Raw: []byte(`{"spec":{}}`)},
		Revision:   1,
	})
}

func validJob() *batchv1.Job {
	t := podTemplate(nil)
	t.Spec.RestartPolicy = corev1.RestartPolicyNever
	return withDefaults(&batchv1.Job{ObjectMeta: objMeta("pi"), Spec: batchv1.JobSpec{Template: t}})
}

func validCronJob() *batchv1.CronJob {
	t := podTemplate(nil)
	t.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
	return withDefaults(&batchv1.CronJob{
		ObjectMeta: objMeta("nightly"),
		Spec: batchv1.CronJobSpec{
			Schedule:    "30 2 * * mon-fri",
			JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: t}},
		},
	})
}

func validHPA() *autoscalingv2.HorizontalPodAutoscaler {
	return withDefaults(&autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: objMeta("web"),
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
			MaxReplicas:    10,
		},
	})
}

func validCSR(t *testing.T) *certificatesv1.CertificateSigningRequest {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: "system:node:node-1", Organization: []string{"system:nodes"}},
	}, key)
	if err != nil {
		t.Fatalf("create CSR: %v", err)
	}
	return withDefaults(&certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: "node-csr-abc", UID: "uid-csr"},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request:    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}),
			SignerName: "kubernetes.io/kube-apiserver-client-kubelet",
			Usages:     []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth},
		},
	})
}

// Short names for the test tables.
type (
	coordinationLease = coordinationv1.Lease
	hpa               = autoscalingv2.HorizontalPodAutoscaler
	csr               = certificatesv1.CertificateSigningRequest
)

func equality(a, b runtime.Object) bool {
	return apiequality.Semantic.DeepEqual(a, b)
}
