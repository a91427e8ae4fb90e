package validation

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"weir.dev/weir/controlplane/defaults"
)

func intOrStr(s string) intstr.IntOrString { return intstr.FromString(s) }

// change returns a copy of obj with fn applied and defaults re-applied, the
// way an edited manifest reaches validation.
func change[T runtime.Object](obj T, fn func(T)) T {
	c := obj.DeepCopyObject().(T)
	fn(c)
	defaults.Default(c)
	return c
}

func TestValidateValidObjects(t *testing.T) {
	tests := []struct {
		name string
		obj  runtime.Object
	}{
		{"pod", validPod()},
		{"service", validService()},
		{"service headless", withDefaults(&corev1.Service{ObjectMeta: objMeta("db"), Spec: corev1.ServiceSpec{ClusterIP: "None", Selector: webLabels}})},
		{"service headless without selector or ports", withDefaults(&corev1.Service{ObjectMeta: objMeta("ext"), Spec: corev1.ServiceSpec{ClusterIP: "None"}})},
		{"service external name", withDefaults(&corev1.Service{ObjectMeta: objMeta("db"), Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.com."}})},
		{"service nodeport", withDefaults(&corev1.Service{ObjectMeta: objMeta("web"), Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeNodePort, Selector: webLabels,
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, NodePort: 30080}, {Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP}},
		}})},
		{"service loadbalancer local", withDefaults(&corev1.Service{ObjectMeta: objMeta("web"), Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeLoadBalancer, Selector: webLabels, ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyLocal,
			SessionAffinity: corev1.ServiceAffinityClientIP, Ports: []corev1.ServicePort{{Port: 443}},
		}})},
		{"namespace", validNamespace()},
		{"node", validNode()},
		{"endpoints", validEndpoints()},
		{"configmap", validConfigMap()},
		{"secret", validSecret()},
		{"event", validEvent()},
		{"endpointslice", validEndpointSlice()},
		{"lease", validLease()},
		{"deployment", validDeployment()},
		{"replicaset", validReplicaSet()},
		{"daemonset", validDaemonSet()},
		{"statefulset", validStatefulSet()},
		{"controllerrevision", validControllerRevision()},
		{"job", validJob()},
		{"cronjob", validCronJob()},
		{"hpa", validHPA()},
		{"csr", validCSR(t)},
		{"pod with init and sidecar containers", change(validPod(), func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{
				{Name: "migrate", Image: "migrate:1"},
				{Name: "proxy", Image: "proxy:1", RestartPolicy: new(corev1.ContainerRestartPolicyAlways),
					LivenessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(15000)}}}},
			}
		})},
		{"pod with resources within limits", change(validPod(), func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources = corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")},
				Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("256Mi")},
			}
		})},
		{"cronjob descriptor", change(validCronJob(), func(c *batchv1.CronJob) { c.Spec.Schedule = "@hourly" })},
		{"job with manual selector", change(validJob(), func(j *batchv1.Job) {
			j.Spec.ManualSelector = new(true)
			j.Spec.Selector = &metav1.LabelSelector{MatchLabels: webLabels}
			j.Spec.Template.Labels = webLabels
		})},
	}
	if len(tests) == 0 {
		t.Fatal("empty test table")
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if errs := Validate(tc.obj, nil); len(errs) != 0 {
				t.Errorf("Validate() = %v, want no errors", errs.ToAggregate())
			}
		})
	}
}

func TestValidateValidUpdates(t *testing.T) {
	tests := []struct {
		name     string
		old, obj runtime.Object
	}{
		{"pod image", validPod(), change(validPod(), func(p *corev1.Pod) { p.Spec.Containers[0].Image = "nginx:1.28" })},
		{"pod new toleration and labels", validPod(), change(validPod(), func(p *corev1.Pod) {
			p.Labels = map[string]string{"tier": "front"}
			p.Spec.Tolerations = append(p.Spec.Tolerations, corev1.Toleration{Key: "gpu", Operator: corev1.TolerationOpExists})
		})},
		{"pod status only", validPod(), change(validPod(), func(p *corev1.Pod) {
			p.Status.Phase = corev1.PodRunning
			p.Status.PodIP = "10.244.1.7"
		})},
		{"deployment scale and new template", validDeployment(), change(validDeployment(), func(d *appsv1.Deployment) {
			d.Spec.Replicas = new(int32(5))
			d.Spec.Template.Spec.Containers[0].Image = "nginx:1.28"
		})},
		{"statefulset scale", validStatefulSet(), change(validStatefulSet(), func(s *appsv1.StatefulSet) { s.Spec.Replicas = new(int32(3)) })},
		{"service same cluster IP", validService(), change(validService(), func(s *corev1.Service) { s.Spec.Ports[0].Port = 8080 })},
		{"service to external name", validService(), func() runtime.Object {
			s := change(validService(), func(s *corev1.Service) {
				s.Spec.Type = corev1.ServiceTypeExternalName
				s.Spec.ExternalName = "web.example.com"
			})
			defaults.DefaultServiceUpdate(s, validService())
			return s
		}()},
		{"configmap mutable data", validConfigMap(), change(validConfigMap(), func(c *corev1.ConfigMap) { c.Data["app.conf"] = "x=2" })},
		{"job parallelism", validJob(), change(validJob(), func(j *batchv1.Job) { j.Spec.Parallelism = new(int32(3)) })},
		{"suspended job steered to a node", change(validJob(), func(j *batchv1.Job) { j.Spec.Suspend = new(true) }), change(validJob(), func(j *batchv1.Job) {
			j.Spec.Suspend = new(true)
			j.Spec.Template.Spec.NodeSelector = map[string]string{"zone": "a"}
		})},
		{"node gets a pod CIDR once", change(validNode(), func(n *corev1.Node) { n.Spec.PodCIDR, n.Spec.PodCIDRs = "", nil }), validNode()},
		{"update without system fields", validDeployment(), change(validDeployment(), func(d *appsv1.Deployment) {
			d.UID, d.ResourceVersion = "", ""
		})},
	}
	if len(tests) == 0 {
		t.Fatal("empty test table")
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if errs := Validate(tc.obj, tc.old); len(errs) != 0 {
				t.Errorf("Validate() = %v, want no errors", errs.ToAggregate())
			}
		})
	}
}

func TestValidateInvalid(t *testing.T) {
	tests := []struct {
		name      string
		obj, old  runtime.Object
		wantField string
		wantType  field.ErrorType
	}{
		// Metadata.
		{name: "missing name", obj: change(validPod(), func(p *corev1.Pod) { p.Name = "" }),
			wantField: "metadata.name", wantType: field.ErrorTypeRequired},
		{name: "name not a subdomain", obj: change(validPod(), func(p *corev1.Pod) { p.Name = "Web_0" }),
			wantField: "metadata.name", wantType: field.ErrorTypeInvalid},
		{name: "missing namespace", obj: change(validPod(), func(p *corev1.Pod) { p.Namespace = "" }),
			wantField: "metadata.namespace", wantType: field.ErrorTypeRequired},
		{name: "namespace on a cluster-scoped kind", obj: change(validNode(), func(n *corev1.Node) { n.Namespace = "default" }),
			wantField: "metadata.namespace", wantType: field.ErrorTypeForbidden},
		{name: "invalid label value", obj: change(validDeployment(), func(d *appsv1.Deployment) { d.Labels = map[string]string{"app": "-bad-"} }),
			wantField: "metadata.labels", wantType: field.ErrorTypeInvalid},
		{name: "invalid annotation key", obj: change(validConfigMap(), func(c *corev1.ConfigMap) { c.Annotations = map[string]string{"bad key": "v"} }),
			wantField: "metadata.annotations", wantType: field.ErrorTypeInvalid},
		{name: "unqualified finalizer", obj: change(validConfigMap(), func(c *corev1.ConfigMap) { c.Finalizers = []string{"cleanup"} }),
			wantField: "metadata.finalizers[0]", wantType: field.ErrorTypeInvalid},
		{name: "namespace name not a DNS label", obj: change(validNamespace(), func(n *corev1.Namespace) { n.Name = "team.a" }),
			wantField: "metadata.name", wantType: field.ErrorTypeInvalid},
		{name: "service name must start with a letter", obj: change(validService(), func(s *corev1.Service) { s.Name = "1web" }),
			wantField: "metadata.name", wantType: field.ErrorTypeInvalid},
		{name: "renamed on update", old: validConfigMap(), obj: change(validConfigMap(), func(c *corev1.ConfigMap) { c.Name = "other" }),
			wantField: "metadata.name", wantType: field.ErrorTypeInvalid},
		{name: "moved namespace on update", old: validConfigMap(), obj: change(validConfigMap(), func(c *corev1.ConfigMap) { c.Namespace = "other" }),
			wantField: "metadata.namespace", wantType: field.ErrorTypeInvalid},
		{name: "changed uid on update", old: validConfigMap(), obj: change(validConfigMap(), func(c *corev1.ConfigMap) { c.UID = "other" }),
			wantField: "metadata.uid", wantType: field.ErrorTypeInvalid},

		// Pods.
		{name: "no containers", obj: change(validPod(), func(p *corev1.Pod) { p.Spec.Containers = nil }),
			wantField: "spec.containers", wantType: field.ErrorTypeRequired},
		{name: "duplicate container names", obj: change(validPod(), func(p *corev1.Pod) {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "app", Image: "busybox"})
		}), wantField: "spec.containers[1].name", wantType: field.ErrorTypeDuplicate},
		{name: "init container named like a container", obj: change(validPod(), func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "app", Image: "busybox"}}
		}), wantField: "spec.initContainers[0].name", wantType: field.ErrorTypeDuplicate},
		{name: "container name not a DNS label", obj: change(validPod(), func(p *corev1.Pod) { p.Spec.Containers[0].Name = "App" }),
			wantField: "spec.containers[0].name", wantType: field.ErrorTypeInvalid},
		{name: "image missing", obj: change(validPod(), func(p *corev1.Pod) { p.Spec.Containers[0].Image = "" }),
			wantField: "spec.containers[0].image", wantType: field.ErrorTypeRequired},
		{name: "container port out of range", obj: change(validPod(), func(p *corev1.Pod) { p.Spec.Containers[0].Ports[0].ContainerPort = 70000 }),
			wantField: "spec.containers[0].ports[0].containerPort", wantType: field.ErrorTypeInvalid},
		{name: "host port out of range", obj: change(validPod(), func(p *corev1.Pod) { p.Spec.Containers[0].Ports[0].HostPort = 70000 }),
			wantField: "spec.containers[0].ports[0].hostPort", wantType: field.ErrorTypeInvalid},
		{name: "unknown port protocol", obj: change(validPod(), func(p *corev1.Pod) { p.Spec.Containers[0].Ports[0].Protocol = "HTTP" }),
			wantField: "spec.containers[0].ports[0].protocol", wantType: field.ErrorTypeNotSupported},
		{name: "probe with two handlers", obj: change(validPod(), func(p *corev1.Pod) {
			p.Spec.Containers[0].ReadinessProbe.TCPSocket = &corev1.TCPSocketAction{Port: intstr.FromInt32(8080)}
		}), wantField: "spec.containers[0].readinessProbe.tcpSocket", wantType: field.ErrorTypeForbidden},
		{name: "probe without handler", obj: change(validPod(), func(p *corev1.Pod) {
			p.Spec.Containers[0].LivenessProbe = &corev1.Probe{}
		}), wantField: "spec.containers[0].livenessProbe", wantType: field.ErrorTypeRequired},
		{name: "liveness probe success threshold", obj: change(validPod(), func(p *corev1.Pod) {
			p.Spec.Containers[0].LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}, SuccessThreshold: 2}
		}), wantField: "spec.containers[0].livenessProbe.successThreshold", wantType: field.ErrorTypeInvalid},
		{name: "bad restart policy", obj: change(validPod(), func(p *corev1.Pod) { p.Spec.RestartPolicy = "Sometimes" }),
			wantField: "spec.restartPolicy", wantType: field.ErrorTypeNotSupported},
		{name: "duplicate volume names", obj: change(validPod(), func(p *corev1.Pod) { p.Spec.Volumes = append(p.Spec.Volumes, p.Spec.Volumes[0]) }),
			wantField: "spec.volumes[1].name", wantType: field.ErrorTypeDuplicate},
		{name: "volume with two types", obj: change(validPod(), func(p *corev1.Pod) {
			p.Spec.Volumes[0].EmptyDir = &corev1.EmptyDirVolumeSource{}
		}), wantField: "spec.volumes[0].configMap", wantType: field.ErrorTypeForbidden},
		{name: "mount of unknown volume", obj: change(validPod(), func(p *corev1.Pod) { p.Spec.Containers[0].VolumeMounts[0].Name = "missing" }),
			wantField: "spec.containers[0].volumeMounts[0].name", wantType: field.ErrorTypeNotFound},
		{name: "env name with =", obj: change(validPod(), func(p *corev1.Pod) { p.Spec.Containers[0].Env[0].Name = "A=B" }),
			wantField: "spec.containers[0].env[0].name", wantType: field.ErrorTypeInvalid},
		{name: "env name empty", obj: change(validPod(), func(p *corev1.Pod) { p.Spec.Containers[0].Env[0].Name = "" }),
			wantField: "spec.containers[0].env[0].name", wantType: field.ErrorTypeRequired},
		{name: "request above limit", obj: change(validPod(), func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources = corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2")},
				Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")},
			}
		}), wantField: "spec.containers[0].resources.requests", wantType: field.ErrorTypeInvalid},
		{name: "unknown resource", obj: change(validPod(), func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{"gpus": resource.MustParse("1")}
		}), wantField: "spec.containers[0].resources.limits[gpus]", wantType: field.ErrorTypeInvalid},
		{name: "ephemeral containers on create", obj: change(validPod(), func(p *corev1.Pod) {
			p.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debug", Image: "busybox"}}}
		}), wantField: "spec.ephemeralContainers", wantType: field.ErrorTypeForbidden},
		{name: "pod spec change on update", old: validPod(), obj: change(validPod(), func(p *corev1.Pod) { p.Spec.RestartPolicy = corev1.RestartPolicyNever }),
			wantField: "spec", wantType: field.ErrorTypeForbidden},
		{name: "pod container added on update", old: validPod(), obj: change(validPod(), func(p *corev1.Pod) {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "side", Image: "busybox"})
		}), wantField: "spec.containers", wantType: field.ErrorTypeForbidden},
		{name: "pod toleration removed on update", old: change(validPod(), func(p *corev1.Pod) {
			p.Spec.Tolerations = append(p.Spec.Tolerations, corev1.Toleration{Key: "gpu", Operator: corev1.TolerationOpExists})
		}), obj: validPod(), wantField: "spec.tolerations", wantType: field.ErrorTypeForbidden},

		// Services.
		{name: "service port out of range", obj: change(validService(), func(s *corev1.Service) { s.Spec.Ports[0].Port = 70000 }),
			wantField: "spec.ports[0].port", wantType: field.ErrorTypeInvalid},
		{name: "service without ports", obj: change(validService(), func(s *corev1.Service) { s.Spec.Ports = nil }),
			wantField: "spec.ports", wantType: field.ErrorTypeRequired},
		{name: "node port on cluster IP service", obj: change(validService(), func(s *corev1.Service) { s.Spec.Ports[0].NodePort = 30080 }),
			wantField: "spec.ports[0].nodePort", wantType: field.ErrorTypeForbidden},
		{name: "node port out of range", obj: change(validService(), func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeNodePort
			s.Spec.Ports[0].NodePort = 70000
		}), wantField: "spec.ports[0].nodePort", wantType: field.ErrorTypeInvalid},
		{name: "unnamed ports when there are two", obj: change(validService(), func(s *corev1.Service) {
			s.Spec.Ports = []corev1.ServicePort{{Port: 80}, {Name: "https", Port: 443}}
		}), wantField: "spec.ports[0].name", wantType: field.ErrorTypeRequired},
		{name: "duplicate port names", obj: change(validService(), func(s *corev1.Service) {
			s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: "http", Port: 8080})
		}), wantField: "spec.ports[1].name", wantType: field.ErrorTypeDuplicate},
		{name: "target port name not IANA_SVC_NAME", obj: change(validService(), func(s *corev1.Service) { s.Spec.Ports[0].TargetPort = intOrStr("Not_Valid") }),
			wantField: "spec.ports[0].targetPort", wantType: field.ErrorTypeInvalid},
		{name: "service protocol", obj: change(validService(), func(s *corev1.Service) { s.Spec.Ports[0].Protocol = "ICMP" }),
			wantField: "spec.ports[0].protocol", wantType: field.ErrorTypeNotSupported},
		{name: "service type", obj: change(validService(), func(s *corev1.Service) { s.Spec.Type = "Internal" }),
			wantField: "spec.type", wantType: field.ErrorTypeNotSupported},
		{name: "cluster IP not an IP", obj: change(validService(), func(s *corev1.Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.96.0.300", nil }),
			wantField: "spec.clusterIPs[0]", wantType: field.ErrorTypeInvalid},
		{name: "external name missing", obj: change(validService(), func(s *corev1.Service) {
			*s = corev1.Service{ObjectMeta: s.ObjectMeta, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName}}
		}), wantField: "spec.externalName", wantType: field.ErrorTypeRequired},
		{name: "external name not DNS", obj: change(validService(), func(s *corev1.Service) {
			*s = corev1.Service{ObjectMeta: s.ObjectMeta, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "db_host"}}
		}), wantField: "spec.externalName", wantType: field.ErrorTypeInvalid},
		{name: "session affinity unknown", obj: change(validService(), func(s *corev1.Service) { s.Spec.SessionAffinity = "Cookie" }),
			wantField: "spec.sessionAffinity", wantType: field.ErrorTypeNotSupported},
		{name: "session affinity timeout too long", obj: change(validService(), func(s *corev1.Service) {
			s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
			s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: new(int32(86401))}}
		}), wantField: "spec.sessionAffinityConfig.clientIP.timeoutSeconds", wantType: field.ErrorTypeInvalid},
		{name: "cluster IP changed", old: validService(), obj: change(validService(), func(s *corev1.Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.96.0.11", nil }),
			wantField: "spec.clusterIPs[0]", wantType: field.ErrorTypeInvalid},
		{name: "endpoints address not an IP", obj: change(validEndpoints(), func(e *corev1.Endpoints) { e.Subsets[0].Addresses[0].IP = "web-0" }),
			wantField: "subsets[0].addresses[0].ip", wantType: field.ErrorTypeInvalid},

		// Workloads.
		{name: "selector does not match template labels", obj: change(validDeployment(), func(d *appsv1.Deployment) {
			d.Spec.Template.Labels = map[string]string{"app": "api"}
		}), wantField: "spec.template.metadata.labels", wantType: field.ErrorTypeInvalid},
		{name: "deployment without selector", obj: change(validDeployment(), func(d *appsv1.Deployment) { d.Spec.Selector = nil }),
			wantField: "spec.selector", wantType: field.ErrorTypeRequired},
		{name: "deployment empty selector", obj: change(validDeployment(), func(d *appsv1.Deployment) { d.Spec.Selector = &metav1.LabelSelector{} }),
			wantField: "spec.selector", wantType: field.ErrorTypeInvalid},
		{name: "negative replicas", obj: change(validDeployment(), func(d *appsv1.Deployment) { d.Spec.Replicas = new(int32(-1)) }),
			wantField: "spec.replicas", wantType: field.ErrorTypeInvalid},
		{name: "surge and unavailable both zero", obj: change(validDeployment(), func(d *appsv1.Deployment) {
			d.Spec.Strategy.RollingUpdate.MaxSurge = new(intstr.FromInt32(0))
			d.Spec.Strategy.RollingUpdate.MaxUnavailable = new(intstr.FromString("0%"))
		}), wantField: "spec.strategy.rollingUpdate.maxUnavailable", wantType: field.ErrorTypeInvalid},
		{name: "negative revision history", obj: change(validDeployment(), func(d *appsv1.Deployment) { d.Spec.RevisionHistoryLimit = new(int32(-1)) }),
			wantField: "spec.revisionHistoryLimit", wantType: field.ErrorTypeInvalid},
		{name: "deployment template must restart always", obj: change(validDeployment(), func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
		}), wantField: "spec.template.spec.restartPolicy", wantType: field.ErrorTypeNotSupported},
		{name: "deployment template pod spec checked", obj: change(validDeployment(), func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.Containers = nil
		}), wantField: "spec.template.spec.containers", wantType: field.ErrorTypeRequired},
		{name: "deployment selector changed", old: validDeployment(), obj: change(validDeployment(), func(d *appsv1.Deployment) {
			d.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web", "v": "2"}}
			d.Spec.Template.Labels = map[string]string{"app": "web", "v": "2"}
		}), wantField: "spec.selector", wantType: field.ErrorTypeInvalid},
		{name: "replicaset selector changed", old: validReplicaSet(), obj: change(validReplicaSet(), func(r *appsv1.ReplicaSet) {
			r.Spec.Selector.MatchLabels = map[string]string{"app": "web", "v": "2"}
			r.Spec.Template.Labels = map[string]string{"app": "web", "v": "2"}
		}), wantField: "spec.selector", wantType: field.ErrorTypeInvalid},
		{name: "daemonset selector changed", old: validDaemonSet(), obj: change(validDaemonSet(), func(d *appsv1.DaemonSet) {
			d.Spec.Selector.MatchLabels = map[string]string{"app": "web", "v": "2"}
			d.Spec.Template.Labels = map[string]string{"app": "web", "v": "2"}
		}), wantField: "spec.selector", wantType: field.ErrorTypeInvalid},
		{name: "daemonset template must restart always", obj: change(validDaemonSet(), func(d *appsv1.DaemonSet) {
			d.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyNever
		}), wantField: "spec.template.spec.restartPolicy", wantType: field.ErrorTypeNotSupported},
		{name: "statefulset selector changed", old: validStatefulSet(), obj: change(validStatefulSet(), func(s *appsv1.StatefulSet) {
			s.Spec.Selector.MatchLabels = map[string]string{"app": "web", "v": "2"}
			s.Spec.Template.Labels = map[string]string{"app": "web", "v": "2"}
		}), wantField: "spec", wantType: field.ErrorTypeForbidden},
		{name: "statefulset mount of unknown claim", obj: change(validStatefulSet(), func(s *appsv1.StatefulSet) {
			s.Spec.Template.Spec.Containers[0].VolumeMounts[0].Name = "logs"
		}), wantField: "spec.template.spec.containers[0].volumeMounts[0].name", wantType: field.ErrorTypeNotFound},
		{name: "controller revision without data", obj: change(validControllerRevision(), func(c *appsv1.ControllerRevision) { c.Data = runtime.RawExtension{} }),
			wantField: "data", wantType: field.ErrorTypeRequired},

		// Jobs.
		{name: "job template restart policy Always", obj: change(validJob(), func(j *batchv1.Job) { j.Spec.Template.Spec.RestartPolicy = "" }),
			wantField: "spec.template.spec.restartPolicy", wantType: field.ErrorTypeNotSupported},
		{name: "job negative parallelism", obj: change(validJob(), func(j *batchv1.Job) { j.Spec.Parallelism = new(int32(-1)) }),
			wantField: "spec.parallelism", wantType: field.ErrorTypeInvalid},
		{name: "job negative backoff limit", obj: change(validJob(), func(j *batchv1.Job) { j.Spec.BackoffLimit = new(int32(-1)) }),
			wantField: "spec.backoffLimit", wantType: field.ErrorTypeInvalid},
		{name: "job selector not generated", obj: change(validJob(), func(j *batchv1.Job) {
			j.Spec.Selector.MatchLabels["extra"] = "x"
			j.Spec.Template.Labels["extra"] = "x"
		}), wantField: "spec.selector", wantType: field.ErrorTypeInvalid},
		{name: "job template changed", old: validJob(), obj: change(validJob(), func(j *batchv1.Job) { j.Spec.Template.Spec.Containers[0].Image = "perl:5" }),
			wantField: "spec.template", wantType: field.ErrorTypeInvalid},
		{name: "job selector changed", old: validJob(), obj: change(validJob(), func(j *batchv1.Job) {
			j.Spec.ManualSelector = new(true)
			j.Spec.Selector = &metav1.LabelSelector{MatchLabels: j.Spec.Template.Labels}
		}), wantField: "spec.selector", wantType: field.ErrorTypeInvalid},
		{name: "cron schedule unparseable", obj: change(validCronJob(), func(c *batchv1.CronJob) { c.Spec.Schedule = "every day" }),
			wantField: "spec.schedule", wantType: field.ErrorTypeInvalid},
		{name: "cron schedule out of range", obj: change(validCronJob(), func(c *batchv1.CronJob) { c.Spec.Schedule = "61 * * * *" }),
			wantField: "spec.schedule", wantType: field.ErrorTypeInvalid},
		{name: "cron schedule with TZ", obj: change(validCronJob(), func(c *batchv1.CronJob) { c.Spec.Schedule = "TZ=UTC 0 * * * *" }),
			wantField: "spec.schedule", wantType: field.ErrorTypeInvalid},
		{name: "cron schedule missing", obj: change(validCronJob(), func(c *batchv1.CronJob) { c.Spec.Schedule = "" }),
			wantField: "spec.schedule", wantType: field.ErrorTypeRequired},
		{name: "cron time zone unknown", obj: change(validCronJob(), func(c *batchv1.CronJob) { c.Spec.TimeZone = new("Mars/Olympus") }),
			wantField: "spec.timeZone", wantType: field.ErrorTypeInvalid},
		{name: "cron job template restart policy", obj: change(validCronJob(), func(c *batchv1.CronJob) {
			c.Spec.JobTemplate.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyAlways
		}), wantField: "spec.jobTemplate.spec.template.spec.restartPolicy", wantType: field.ErrorTypeNotSupported},
		{name: "cron job template selector", obj: change(validCronJob(), func(c *batchv1.CronJob) {
			c.Spec.JobTemplate.Spec.Selector = &metav1.LabelSelector{MatchLabels: webLabels}
		}), wantField: "spec.jobTemplate.spec.selector", wantType: field.ErrorTypeInvalid},
		{name: "cron job name too long", obj: change(validCronJob(), func(c *batchv1.CronJob) { c.Name = strings.Repeat("a", 53) }),
			wantField: "metadata.name", wantType: field.ErrorTypeInvalid},

		// Other kinds.
		{name: "configmap key", obj: change(validConfigMap(), func(c *corev1.ConfigMap) { c.Data["bad key"] = "x" }),
			wantField: "data[bad key]", wantType: field.ErrorTypeInvalid},
		{name: "configmap too large", obj: change(validConfigMap(), func(c *corev1.ConfigMap) { c.Data["big"] = strings.Repeat("x", 1<<20+1) }),
			// Kubernetes reports the whole object this way.
			wantField: "[]", wantType: field.ErrorTypeTooLong},
		{name: "immutable configmap data changed", old: change(validConfigMap(), func(c *corev1.ConfigMap) { c.Immutable = new(true) }),
			obj: change(validConfigMap(), func(c *corev1.ConfigMap) {
				c.Immutable = new(true)
				c.Data["app.conf"] = "x=2"
			}), wantField: "data", wantType: field.ErrorTypeForbidden},
		{name: "immutable configmap made mutable", old: change(validConfigMap(), func(c *corev1.ConfigMap) { c.Immutable = new(true) }),
			obj: validConfigMap(), wantField: "immutable", wantType: field.ErrorTypeForbidden},
		{name: "immutable secret data changed", old: change(validSecret(), func(s *corev1.Secret) { s.Immutable = new(true) }),
			obj: change(validSecret(), func(s *corev1.Secret) {
				s.Immutable = new(true)
				s.Data["password"] = []byte("other")
			}), wantField: "data", wantType: field.ErrorTypeForbidden},
		{name: "tls secret without key", obj: change(validSecret(), func(s *corev1.Secret) {
			s.Type = corev1.SecretTypeTLS
			s.Data = map[string][]byte{"tls.crt": []byte("x")}
		}), wantField: "data[tls.key]", wantType: field.ErrorTypeRequired},
		{name: "secret type changed", old: validSecret(), obj: change(validSecret(), func(s *corev1.Secret) { s.Type = "example.com/token" }),
			wantField: "type", wantType: field.ErrorTypeInvalid},
		{name: "node pod CIDR invalid", obj: change(validNode(), func(n *corev1.Node) { n.Spec.PodCIDR, n.Spec.PodCIDRs = "10.244.1.0/33", nil }),
			wantField: "spec.podCIDRs[0]", wantType: field.ErrorTypeInvalid},
		{name: "node pod CIDR changed", old: validNode(), obj: change(validNode(), func(n *corev1.Node) { n.Spec.PodCIDR, n.Spec.PodCIDRs = "10.244.2.0/24", nil }),
			wantField: "spec.podCIDRs", wantType: field.ErrorTypeForbidden},
		{name: "node taint without effect", obj: change(validNode(), func(n *corev1.Node) { n.Spec.Taints[0].Effect = "" }),
			wantField: "spec.taints[0].effect", wantType: field.ErrorTypeRequired},
		{name: "event namespace mismatch", obj: change(validEvent(), func(e *corev1.Event) { e.InvolvedObject.Namespace = "other" }),
			wantField: "involvedObject.namespace", wantType: field.ErrorTypeInvalid},
		{name: "new-style event without reason", obj: change(validEvent(), func(e *corev1.Event) {
			e.EventTime = metav1.NowMicro()
			e.ReportingController = "weir.dev/agent"
			e.ReportingInstance = "node-1"
			e.Action = "Started"
			e.Reason = ""
		}), wantField: "reason", wantType: field.ErrorTypeRequired},
		{name: "endpointslice address type", obj: change(validEndpointSlice(), func(e *discoveryv1.EndpointSlice) { e.AddressType = "IPv5" }),
			wantField: "addressType", wantType: field.ErrorTypeNotSupported},
		{name: "endpointslice address not IPv4", obj: change(validEndpointSlice(), func(e *discoveryv1.EndpointSlice) { e.Endpoints[0].Addresses[0] = "fd00::5" }),
			wantField: "endpoints[0].addresses[0]", wantType: field.ErrorTypeInvalid},
		{name: "endpointslice too many endpoints", obj: change(validEndpointSlice(), func(e *discoveryv1.EndpointSlice) {
			for range 1000 {
				e.Endpoints = append(e.Endpoints, e.Endpoints[0])
			}
		}), wantField: "endpoints", wantType: field.ErrorTypeTooMany},
		{name: "endpointslice port protocol", obj: change(validEndpointSlice(), func(e *discoveryv1.EndpointSlice) { e.Ports[0].Protocol = new(corev1.Protocol("HTTP")) }),
			wantField: "ports[0].protocol", wantType: field.ErrorTypeNotSupported},
		{name: "endpointslice address type changed", old: validEndpointSlice(), obj: change(validEndpointSlice(), func(e *discoveryv1.EndpointSlice) {
			e.AddressType = discoveryv1.AddressTypeIPv6
			e.Endpoints[0].Addresses[0] = "fd00::5"
		}), wantField: "addressType", wantType: field.ErrorTypeInvalid},
		{name: "lease duration zero", obj: change(validLease(), func(l *coordinationLease) { l.Spec.LeaseDurationSeconds = new(int32(0)) }),
			wantField: "spec.leaseDurationSeconds", wantType: field.ErrorTypeInvalid},
		{name: "hpa max below min", obj: change(validHPA(), func(h *hpa) { h.Spec.MinReplicas, h.Spec.MaxReplicas = new(int32(5)), 2 }),
			wantField: "spec.maxReplicas", wantType: field.ErrorTypeInvalid},
		{name: "hpa max zero", obj: change(validHPA(), func(h *hpa) { h.Spec.MaxReplicas = 0 }),
			wantField: "spec.maxReplicas", wantType: field.ErrorTypeInvalid},
		{name: "hpa target without name", obj: change(validHPA(), func(h *hpa) { h.Spec.ScaleTargetRef.Name = "" }),
			wantField: "spec.scaleTargetRef.name", wantType: field.ErrorTypeRequired},
		{name: "csr garbage request", obj: change(validCSR(t), func(c *csr) { c.Spec.Request = []byte("not pem") }),
			wantField: "spec.request", wantType: field.ErrorTypeInvalid},
		{name: "csr signer name", obj: change(validCSR(t), func(c *csr) { c.Spec.SignerName = "kubelet" }),
			wantField: "spec.signerName", wantType: field.ErrorTypeInvalid},
		{name: "csr unknown usage", obj: change(validCSR(t), func(c *csr) { c.Spec.Usages = append(c.Spec.Usages, "world domination") }),
			wantField: "spec.usages[2]", wantType: field.ErrorTypeNotSupported},
	}
	if len(tests) == 0 {
		t.Fatal("empty test table")
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			errs := Validate(tc.obj, tc.old)
			for _, e := range errs {
				if e.Field == tc.wantField && e.Type == tc.wantType {
					return
				}
			}
			t.Errorf("Validate() = %v\nwant an error of type %q at %q", errs.ToAggregate(), tc.wantType, tc.wantField)
		})
	}
}

// TestValidateMessages pins the text users see, which must read like
// kube-apiserver's.
func TestValidateMessages(t *testing.T) {
	tests := []struct {
		name string
		obj  runtime.Object
		want string
	}{
		{
			name: "service port",
			obj: change(validService(), func(s *corev1.Service) {
				s.Spec.Ports[0].Port = 70000
				s.Spec.Ports[0].TargetPort = intstr.FromInt32(8080)
			}),
			want: "spec.ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive",
		},
		{
			name: "missing name",
			obj:  change(validConfigMap(), func(c *corev1.ConfigMap) { c.Name = "" }),
			want: "metadata.name: Required value: name or generateName is required",
		},
		{
			name: "selector mismatch",
			obj:  change(validReplicaSet(), func(r *appsv1.ReplicaSet) { r.Spec.Template.Labels = map[string]string{"app": "api"} }),
			want: "spec.template.metadata.labels: Invalid value: {\"app\":\"api\"}: `selector` does not match template `labels`",
		},
		{
			name: "job restart policy",
			obj:  change(validJob(), func(j *batchv1.Job) { j.Spec.Template.Spec.RestartPolicy = "" }),
			want: "spec.template.spec.restartPolicy: Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\"",
		},
		{
			name: "cron schedule",
			obj:  change(validCronJob(), func(c *batchv1.CronJob) { c.Spec.Schedule = "* * *" }),
			want: "spec.schedule: Invalid value: \"* * *\": expected exactly 5 fields, found 3: [* * *]",
		},
		{
			name: "node port on cluster IP",
			obj:  change(validService(), func(s *corev1.Service) { s.Spec.Ports[0].NodePort = 30080 }),
			want: "spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'",
		},
	}
	if len(tests) == 0 {
		t.Fatal("empty test table")
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			errs := Validate(tc.obj, nil)
			if len(errs) != 1 {
				t.Fatalf("Validate() = %v, want exactly one error", errs.ToAggregate())
			}
			if got := errs.ToAggregate().Error(); got != tc.want {
				t.Errorf("message:\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestValidateMismatchedOld(t *testing.T) {
	tests := []struct {
		name     string
		obj, old runtime.Object
	}{
		{"pod with service as old", validPod(), validService()},
		{"nil pod", (*corev1.Pod)(nil), nil},
	}
	if len(tests) == 0 {
		t.Fatal("empty test table")
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			errs := Validate(tc.obj, tc.old)
			if len(errs) != 1 || errs[0].Type != field.ErrorTypeInternal {
				t.Errorf("Validate() = %v, want one internal error", errs)
			}
		})
	}
}

func TestValidateDoesNotMutate(t *testing.T) {
	tests := []struct {
		name     string
		obj, old runtime.Object
	}{
		{"pod update", change(validPod(), func(p *corev1.Pod) { p.Spec.RestartPolicy = corev1.RestartPolicyNever }), validPod()},
		{"statefulset update", change(validStatefulSet(), func(s *appsv1.StatefulSet) { s.Spec.ServiceName = "other" }), validStatefulSet()},
		{"job update", change(validJob(), func(j *batchv1.Job) { j.Spec.Suspend = new(true) }), validJob()},
	}
	if len(tests) == 0 {
		t.Fatal("empty test table")
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			obj, old := tc.obj.DeepCopyObject(), tc.old.DeepCopyObject()
			Validate(obj, old)
			if !equality(obj, tc.obj) || !equality(old, tc.old) {
				t.Error("Validate() modified its arguments")
			}
		})
	}
}
