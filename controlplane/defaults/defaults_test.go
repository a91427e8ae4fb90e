package defaults

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// quantityEqual compares quantities by value: "1" and "1000m" are the same
// request.
var quantityEqual = cmp.Comparer(func(a, b resource.Quantity) bool { return a.Cmp(b) == 0 })

func meta(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: "default"}
}

// minimalSpec is the smallest PodSpec a user writes.
func minimalSpec() corev1.PodSpec {
	return corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx:1.27"}}}
}

// defaultedSpec is minimalSpec after template-level defaulting.
func defaultedSpec() corev1.PodSpec {
	return corev1.PodSpec{
		Containers: []corev1.Container{{
			Name:                     "app",
			Image:                    "nginx:1.27",
			ImagePullPolicy:          corev1.PullIfNotPresent,
			TerminationMessagePath:   "/dev/termination-log",
			TerminationMessagePolicy: corev1.TerminationMessageReadFile,
		}},
		RestartPolicy:                 corev1.RestartPolicyAlways,
		TerminationGracePeriodSeconds: new(int64(30)),
		DNSPolicy:                     corev1.DNSClusterFirst,
		SecurityContext:               &corev1.PodSecurityContext{},
		SchedulerName:                 "default-scheduler",
	}
}

func template(labels map[string]string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: minimalSpec()}
}

func defaultedTemplate(labels map[string]string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: defaultedSpec()}
}

func wantTolerations() []corev1.Toleration {
	return []corev1.Toleration{
		{Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: new(int64(300))},
		{Key: "node.kubernetes.io/unreachable", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: new(int64(300))},
	}
}

func TestDefault(t *testing.T) {
	app := map[string]string{"app": "web"}
	tests := []struct {
		name string
		in   runtime.Object
		want runtime.Object
	}{
		{
			name: "pod",
			in:   &corev1.Pod{ObjectMeta: meta("p"), Spec: minimalSpec()},
			want: func() *corev1.Pod {
				p := &corev1.Pod{ObjectMeta: meta("p"), Spec: defaultedSpec()}
				p.Spec.EnableServiceLinks = new(true)
				p.Spec.Priority = new(int32(0))
				p.Spec.PreemptionPolicy = new(corev1.PreemptLowerPriority)
				p.Spec.Tolerations = wantTolerations()
				p.Status = corev1.PodStatus{Phase: corev1.PodPending, QOSClass: corev1.PodQOSBestEffort}
				return p
			}(),
		},
		{
			name: "pod containers, probes, ports, volumes, limits",
			in: &corev1.Pod{ObjectMeta: meta("p"), Spec: corev1.PodSpec{
				HostNetwork: true,
				Containers: []corev1.Container{{
					Name:  "app",
					Image: "registry.local:5000/team/app",
					Ports: []corev1.ContainerPort{{ContainerPort: 8080}},
					Env: []corev1.EnvVar{{Name: "NODE", ValueFrom: &corev1.EnvVarSource{
						FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"},
					}}},
					LivenessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
						HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromInt32(8080)},
					}},
					ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
						GRPC: &corev1.GRPCAction{Port: 9000},
					}},
					Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{
						corev1.ResourceCPU:    resource.MustParse("500m"),
						corev1.ResourceMemory: resource.MustParse("128Mi"),
					}},
				}},
				Volumes: []corev1.Volume{
					{Name: "scratch"},
					{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}},
					{Name: "creds", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "creds"}}},
					{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/log"}}},
				},
			}},
			want: func() *corev1.Pod {
				p := &corev1.Pod{ObjectMeta: meta("p"), Spec: defaultedSpec()}
				p.Spec.HostNetwork = true
				limits := corev1.ResourceList{
					corev1.ResourceCPU:    resource.MustParse("500m"),
					corev1.ResourceMemory: resource.MustParse("128Mi"),
				}
				p.Spec.Containers = []corev1.Container{{
					Name:            "app",
					Image:           "registry.local:5000/team/app",
					ImagePullPolicy: corev1.PullAlways,
					Ports:           []corev1.ContainerPort{{ContainerPort: 8080, HostPort: 8080, Protocol: corev1.ProtocolTCP}},
					Env: []corev1.EnvVar{{Name: "NODE", ValueFrom: &corev1.EnvVarSource{
						FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "spec.nodeName"},
					}}},
					LivenessProbe: &corev1.Probe{
						ProbeHandler:   corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromInt32(8080), Scheme: corev1.URISchemeHTTP}},
						TimeoutSeconds: 1, PeriodSeconds: 10, SuccessThreshold: 1, FailureThreshold: 3,
					},
					ReadinessProbe: &corev1.Probe{
						ProbeHandler:   corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: 9000, Service: new("")}},
						TimeoutSeconds: 1, PeriodSeconds: 10, SuccessThreshold: 1, FailureThreshold: 3,
					},
					Resources:                corev1.ResourceRequirements{Limits: limits, Requests: limits.DeepCopy()},
					TerminationMessagePath:   "/dev/termination-log",
					TerminationMessagePolicy: corev1.TerminationMessageReadFile,
				}}
				p.Spec.Volumes = []corev1.Volume{
					{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
					{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, DefaultMode: new(int32(0o644))}}},
					{Name: "creds", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "creds", DefaultMode: new(int32(0o644))}}},
					{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/log", Type: new(corev1.HostPathUnset)}}},
				}
				p.Spec.EnableServiceLinks = new(true)
				p.Spec.Priority = new(int32(0))
				p.Spec.PreemptionPolicy = new(corev1.PreemptLowerPriority)
				p.Spec.Tolerations = wantTolerations()
				p.Status = corev1.PodStatus{Phase: corev1.PodPending, QOSClass: corev1.PodQOSGuaranteed}
				return p
			}(),
		},
		{
			name: "service",
			in: &corev1.Service{ObjectMeta: meta("s"), Spec: corev1.ServiceSpec{
				Selector: app,
				Ports:    []corev1.ServicePort{{Port: 80}},
			}},
			want: &corev1.Service{ObjectMeta: meta("s"), Spec: corev1.ServiceSpec{
				Selector:              app,
				Ports:                 []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(80)}},
				Type:                  corev1.ServiceTypeClusterIP,
				SessionAffinity:       corev1.ServiceAffinityNone,
				IPFamilies:            []corev1.IPFamily{corev1.IPv4Protocol},
				IPFamilyPolicy:        new(corev1.IPFamilyPolicySingleStack),
				InternalTrafficPolicy: new(corev1.ServiceInternalTrafficPolicyCluster),
			}},
		},
		{
			name: "service nodeport with client-ip affinity and fixed cluster IP",
			in: &corev1.Service{ObjectMeta: meta("s"), Spec: corev1.ServiceSpec{
				Type:            corev1.ServiceTypeNodePort,
				ClusterIP:       "10.96.0.10",
				SessionAffinity: corev1.ServiceAffinityClientIP,
				Ports:           []corev1.ServicePort{{Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromString("dns")}},
			}},
			want: &corev1.Service{ObjectMeta: meta("s"), Spec: corev1.ServiceSpec{
				Type:            corev1.ServiceTypeNodePort,
				ClusterIP:       "10.96.0.10",
				ClusterIPs:      []string{"10.96.0.10"},
				SessionAffinity: corev1.ServiceAffinityClientIP,
				SessionAffinityConfig: &corev1.SessionAffinityConfig{
					ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: new(int32(10800))},
				},
				Ports:                 []corev1.ServicePort{{Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromString("dns")}},
				IPFamilies:            []corev1.IPFamily{corev1.IPv4Protocol},
				IPFamilyPolicy:        new(corev1.IPFamilyPolicySingleStack),
				InternalTrafficPolicy: new(corev1.ServiceInternalTrafficPolicyCluster),
				ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyCluster,
			}},
		},
		{
			name: "service loadbalancer",
			in:   &corev1.Service{ObjectMeta: meta("s"), Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{{Port: 443}}}},
			want: &corev1.Service{ObjectMeta: meta("s"), Spec: corev1.ServiceSpec{
				Type:                          corev1.ServiceTypeLoadBalancer,
				Ports:                         []corev1.ServicePort{{Port: 443, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(443)}},
				SessionAffinity:               corev1.ServiceAffinityNone,
				IPFamilies:                    []corev1.IPFamily{corev1.IPv4Protocol},
				IPFamilyPolicy:                new(corev1.IPFamilyPolicySingleStack),
				InternalTrafficPolicy:         new(corev1.ServiceInternalTrafficPolicyCluster),
				ExternalTrafficPolicy:         corev1.ServiceExternalTrafficPolicyCluster,
				AllocateLoadBalancerNodePorts: new(true),
			}},
		},
		{
			name: "service headless without selector",
			in:   &corev1.Service{ObjectMeta: meta("s"), Spec: corev1.ServiceSpec{ClusterIP: "None"}},
			want: &corev1.Service{ObjectMeta: meta("s"), Spec: corev1.ServiceSpec{
				Type:                  corev1.ServiceTypeClusterIP,
				ClusterIP:             "None",
				ClusterIPs:            []string{"None"},
				SessionAffinity:       corev1.ServiceAffinityNone,
				IPFamilies:            []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol},
				IPFamilyPolicy:        new(corev1.IPFamilyPolicyRequireDualStack),
				InternalTrafficPolicy: new(corev1.ServiceInternalTrafficPolicyCluster),
			}},
		},
		{
			name: "service external name",
			in:   &corev1.Service{ObjectMeta: meta("s"), Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.com"}},
			want: &corev1.Service{ObjectMeta: meta("s"), Spec: corev1.ServiceSpec{
				Type:            corev1.ServiceTypeExternalName,
				ExternalName:    "db.example.com",
				SessionAffinity: corev1.ServiceAffinityNone,
			}},
		},
		{
			name: "namespace",
			in:   &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}},
			want: &corev1.Namespace{
				ObjectMeta: metav1.ObjectMeta{Name: "team-a", Labels: map[string]string{"kubernetes.io/metadata.name": "team-a"}},
				Spec:       corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{"kubernetes"}},
				Status:     corev1.NamespaceStatus{Phase: corev1.NamespaceActive},
			},
		},
		{
			name: "namespace being deleted keeps its finalizers removed",
			in:   &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "gone", DeletionTimestamp: &metav1.Time{}}},
			want: &corev1.Namespace{
				ObjectMeta: metav1.ObjectMeta{Name: "gone", DeletionTimestamp: &metav1.Time{}, Labels: map[string]string{"kubernetes.io/metadata.name": "gone"}},
				Status:     corev1.NamespaceStatus{Phase: corev1.NamespaceTerminating},
			},
		},
		{
			name: "node",
			in: &corev1.Node{
				ObjectMeta: metav1.ObjectMeta{Name: "n1"},
				Spec:       corev1.NodeSpec{PodCIDR: "10.244.1.0/24"},
				Status:     corev1.NodeStatus{Capacity: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2")}},
			},
			want: &corev1.Node{
				ObjectMeta: metav1.ObjectMeta{Name: "n1"},
				Spec:       corev1.NodeSpec{PodCIDR: "10.244.1.0/24", PodCIDRs: []string{"10.244.1.0/24"}},
				Status: corev1.NodeStatus{
					Capacity:    corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2")},
					Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2")},
				},
			},
		},
		{
			name: "endpoints",
			in: &corev1.Endpoints{ObjectMeta: meta("e"), Subsets: []corev1.EndpointSubset{{
				Addresses: []corev1.EndpointAddress{{IP: "10.244.1.5"}}, Ports: []corev1.EndpointPort{{Port: 80}},
			}}},
			want: &corev1.Endpoints{ObjectMeta: meta("e"), Subsets: []corev1.EndpointSubset{{
				Addresses: []corev1.EndpointAddress{{IP: "10.244.1.5"}}, Ports: []corev1.EndpointPort{{Port: 80, Protocol: corev1.ProtocolTCP}},
			}}},
		},
		{
			name: "secret folds stringData into data",
			in: &corev1.Secret{ObjectMeta: meta("s"),
				Data:       map[string][]byte{"user": []byte("old"), "keep": []byte("k")},
				StringData: map[string]string{"user": "admin"},
			},
			want: &corev1.Secret{ObjectMeta: meta("s"),
				Type: corev1.SecretTypeOpaque,
				Data: map[string][]byte{"user": []byte("admin"), "keep": []byte("k")},
			},
		},
		{
			name: "endpointslice",
			in: &discoveryv1.EndpointSlice{ObjectMeta: meta("es"), AddressType: discoveryv1.AddressTypeIPv4,
				Ports: []discoveryv1.EndpointPort{{Port: new(int32(80))}}},
			want: &discoveryv1.EndpointSlice{ObjectMeta: meta("es"), AddressType: discoveryv1.AddressTypeIPv4,
				Ports: []discoveryv1.EndpointPort{{Name: new(""), Protocol: new(corev1.ProtocolTCP), Port: new(int32(80))}}},
		},
		{
			name: "deployment",
			in:   &appsv1.Deployment{ObjectMeta: meta("d"), Spec: appsv1.DeploymentSpec{Template: template(app)}},
			want: &appsv1.Deployment{ObjectMeta: meta("d"), Spec: appsv1.DeploymentSpec{
				Replicas: new(int32(1)),
				Template: defaultedTemplate(app),
				Strategy: appsv1.DeploymentStrategy{
					Type: appsv1.RollingUpdateDeploymentStrategyType,
					RollingUpdate: &appsv1.RollingUpdateDeployment{
						MaxUnavailable: new(intstr.FromString("25%")),
						MaxSurge:       new(intstr.FromString("25%")),
					},
				},
				RevisionHistoryLimit:    new(int32(10)),
				ProgressDeadlineSeconds: new(int32(600)),
			}},
		},
		{
			name: "deployment recreate keeps no rolling update",
			in: &appsv1.Deployment{ObjectMeta: meta("d"), Spec: appsv1.DeploymentSpec{
				Replicas: new(int32(3)), Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}, Template: template(app),
			}},
			want: &appsv1.Deployment{ObjectMeta: meta("d"), Spec: appsv1.DeploymentSpec{
				Replicas:                new(int32(3)),
				Template:                defaultedTemplate(app),
				Strategy:                appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType},
				RevisionHistoryLimit:    new(int32(10)),
				ProgressDeadlineSeconds: new(int32(600)),
			}},
		},
		{
			name: "replicaset",
			in:   &appsv1.ReplicaSet{ObjectMeta: meta("rs"), Spec: appsv1.ReplicaSetSpec{Template: template(app)}},
			want: &appsv1.ReplicaSet{ObjectMeta: meta("rs"), Spec: appsv1.ReplicaSetSpec{Replicas: new(int32(1)), Template: defaultedTemplate(app)}},
		},
		{
			name: "daemonset",
			in:   &appsv1.DaemonSet{ObjectMeta: meta("ds"), Spec: appsv1.DaemonSetSpec{Template: template(app)}},
			want: &appsv1.DaemonSet{ObjectMeta: meta("ds"), Spec: appsv1.DaemonSetSpec{
				Template: defaultedTemplate(app),
				UpdateStrategy: appsv1.DaemonSetUpdateStrategy{
					Type: appsv1.RollingUpdateDaemonSetStrategyType,
					RollingUpdate: &appsv1.RollingUpdateDaemonSet{
						MaxUnavailable: new(intstr.FromInt32(1)),
						MaxSurge:       new(intstr.FromInt32(0)),
					},
				},
				RevisionHistoryLimit: new(int32(10)),
			}},
		},
		{
			name: "statefulset",
			in: &appsv1.StatefulSet{ObjectMeta: meta("ss"), Spec: appsv1.StatefulSetSpec{
				Template:             template(app),
				VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "data"}}},
			}},
			want: &appsv1.StatefulSet{ObjectMeta: meta("ss"), Spec: appsv1.StatefulSetSpec{
				Replicas:            new(int32(1)),
				Template:            defaultedTemplate(app),
				PodManagementPolicy: appsv1.OrderedReadyPodManagement,
				UpdateStrategy: appsv1.StatefulSetUpdateStrategy{
					Type:          appsv1.RollingUpdateStatefulSetStrategyType,
					RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{Partition: new(int32(0))},
				},
				RevisionHistoryLimit: new(int32(10)),
				PersistentVolumeClaimRetentionPolicy: &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
					WhenDeleted: appsv1.RetainPersistentVolumeClaimRetentionPolicyType,
					WhenScaled:  appsv1.RetainPersistentVolumeClaimRetentionPolicyType,
				},
				VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{
					ObjectMeta: metav1.ObjectMeta{Name: "data"},
					Spec:       corev1.PersistentVolumeClaimSpec{VolumeMode: new(corev1.PersistentVolumeFilesystem)},
					Status:     corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimPending},
				}},
			}},
		},
		{
			name: "job without uid keeps its template restart policy defaulted to Always",
			in:   &batchv1.Job{ObjectMeta: meta("j"), Spec: batchv1.JobSpec{Template: template(nil)}},
			want: &batchv1.Job{ObjectMeta: meta("j"), Spec: batchv1.JobSpec{
				Parallelism:          new(int32(1)),
				Completions:          new(int32(1)),
				BackoffLimit:         new(int32(6)),
				CompletionMode:       new(batchv1.NonIndexedCompletion),
				Suspend:              new(false),
				ManualSelector:       new(false),
				PodReplacementPolicy: new(batchv1.TerminatingOrFailed),
				Template:             defaultedTemplate(nil),
			}},
		},
		{
			name: "job with uid gets generated selector",
			in: &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "pi", Namespace: "default", UID: "u-1"}, Spec: batchv1.JobSpec{
				Parallelism: new(int32(2)),
				Template: func() corev1.PodTemplateSpec {
					t := template(nil)
					t.Spec.RestartPolicy = corev1.RestartPolicyNever
					return t
				}(),
			}},
			want: func() *batchv1.Job {
				labels := map[string]string{
					"batch.kubernetes.io/controller-uid": "u-1",
					"batch.kubernetes.io/job-name":       "pi",
					"controller-uid":                     "u-1",
					"job-name":                           "pi",
				}
				t := defaultedTemplate(labels)
				t.Spec.RestartPolicy = corev1.RestartPolicyNever
				return &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "pi", Namespace: "default", UID: "u-1", Labels: labels}, Spec: batchv1.JobSpec{
					Parallelism:          new(int32(2)),
					BackoffLimit:         new(int32(6)),
					CompletionMode:       new(batchv1.NonIndexedCompletion),
					Suspend:              new(false),
					ManualSelector:       new(false),
					PodReplacementPolicy: new(batchv1.TerminatingOrFailed),
					Selector:             &metav1.LabelSelector{MatchLabels: map[string]string{"batch.kubernetes.io/controller-uid": "u-1"}},
					Template:             t,
				}}
			}(),
		},
		{
			name: "job with labelled template keeps only the user's labels on the job",
			in: &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "pi", Namespace: "default", UID: "u-1"}, Spec: batchv1.JobSpec{
				ManualSelector: new(true),
				Selector:       &metav1.LabelSelector{MatchLabels: app},
				Template:       template(app),
			}},
			want: &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "pi", Namespace: "default", UID: "u-1", Labels: app}, Spec: batchv1.JobSpec{
				Parallelism:          new(int32(1)),
				Completions:          new(int32(1)),
				BackoffLimit:         new(int32(6)),
				CompletionMode:       new(batchv1.NonIndexedCompletion),
				Suspend:              new(false),
				ManualSelector:       new(true),
				PodReplacementPolicy: new(batchv1.TerminatingOrFailed),
				Selector:             &metav1.LabelSelector{MatchLabels: app},
				Template:             defaultedTemplate(app),
			}},
		},
		{
			name: "cronjob",
			in: &batchv1.CronJob{ObjectMeta: meta("cj"), Spec: batchv1.CronJobSpec{
				Schedule:    "*/5 * * * *",
				JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: template(nil)}},
			}},
			want: &batchv1.CronJob{ObjectMeta: meta("cj"), Spec: batchv1.CronJobSpec{
				Schedule:                   "*/5 * * * *",
				ConcurrencyPolicy:          batchv1.AllowConcurrent,
				Suspend:                    new(false),
				SuccessfulJobsHistoryLimit: new(int32(3)),
				FailedJobsHistoryLimit:     new(int32(1)),
				JobTemplate:                batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: defaultedTemplate(nil)}},
			}},
		},
		{
			name: "hpa",
			in: &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: meta("h"), Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
				ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "d"},
				MaxReplicas:    5,
			}},
			want: &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: meta("h"), Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
				ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "d"},
				MinReplicas:    new(int32(1)),
				MaxReplicas:    5,
				Metrics: []autoscalingv2.MetricSpec{{
					Type: autoscalingv2.ResourceMetricSourceType,
					Resource: &autoscalingv2.ResourceMetricSource{
						Name:   corev1.ResourceCPU,
						Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: new(int32(80))},
					},
				}},
			}},
		},
		{
			name: "hpa behavior fills unset rules",
			in: &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: meta("h"), Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
				MinReplicas: new(int32(2)),
				MaxReplicas: 5,
				Metrics:     []autoscalingv2.MetricSpec{{Type: autoscalingv2.PodsMetricSourceType}},
				Behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{
					ScaleDown: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: new(int32(60))},
				},
			}},
			want: &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: meta("h"), Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
				MinReplicas: new(int32(2)),
				MaxReplicas: 5,
				Metrics:     []autoscalingv2.MetricSpec{{Type: autoscalingv2.PodsMetricSourceType}},
				Behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{
					ScaleUp: &autoscalingv2.HPAScalingRules{
						StabilizationWindowSeconds: new(int32(0)),
						SelectPolicy:               new(autoscalingv2.MaxChangePolicySelect),
						Policies: []autoscalingv2.HPAScalingPolicy{
							{Type: autoscalingv2.PodsScalingPolicy, Value: 4, PeriodSeconds: 15},
							{Type: autoscalingv2.PercentScalingPolicy, Value: 100, PeriodSeconds: 15},
						},
					},
					ScaleDown: &autoscalingv2.HPAScalingRules{
						StabilizationWindowSeconds: new(int32(60)),
						SelectPolicy:               new(autoscalingv2.MaxChangePolicySelect),
						Policies:                   []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PercentScalingPolicy, Value: 100, PeriodSeconds: 15}},
					},
				},
			}},
		},
	}
	if len(tests) == 0 {
		t.Fatal("empty test table")
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.in.DeepCopyObject()
			Default(got)
			if diff := cmp.Diff(tc.want, got, quantityEqual); diff != "" {
				t.Errorf("Default() mismatch (-want +got):\n%s", diff)
			}
			// Defaulting runs on every decode, so it must be stable.
			again := got.DeepCopyObject()
			Default(again)
			if diff := cmp.Diff(got, again, quantityEqual); diff != "" {
				t.Errorf("Default() not idempotent (-first +second):\n%s", diff)
			}
		})
	}
}

func TestDefaultUnknownTypeIsNoop(t *testing.T) {
	tests := []runtime.Object{
		&corev1.PodList{},
		&metav1.Status{Message: "x"},
	}
	if len(tests) == 0 {
		t.Fatal("empty test table")
	}
	for _, obj := range tests {
		t.Run(typeName(obj), func(t *testing.T) {
			got := obj.DeepCopyObject()
			Default(got)
			if diff := cmp.Diff(obj, got); diff != "" {
				t.Errorf("Default() changed an unknown type (-want +got):\n%s", diff)
			}
		})
	}
}

func typeName(obj runtime.Object) string {
	switch obj.(type) {
	case *corev1.PodList:
		return "PodList"
	case *metav1.Status:
		return "Status"
	}
	return "other"
}

func TestPullPolicy(t *testing.T) {
	tests := []struct {
		image string
		want  corev1.PullPolicy
	}{
		{"nginx", corev1.PullAlways},
		{"nginx:latest", corev1.PullAlways},
		{"nginx:1.27", corev1.PullIfNotPresent},
		{"library/nginx:1.27-alpine", corev1.PullIfNotPresent},
		{"registry.local:5000/team/app", corev1.PullAlways},
		{"registry.local:5000/team/app:v2", corev1.PullIfNotPresent},
		{"localhost/app:latest", corev1.PullAlways},
		{"weir.local/echo@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", corev1.PullIfNotPresent},
		{"weir.local/echo:latest@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", corev1.PullAlways},
		{"", corev1.PullIfNotPresent},
		{"Not A Valid Image", corev1.PullIfNotPresent},
	}
	if len(tests) == 0 {
		t.Fatal("empty test table")
	}
	for _, tc := range tests {
		t.Run(tc.image, func(t *testing.T) {
			if got := pullPolicyFor(tc.image); got != tc.want {
				t.Errorf("pullPolicyFor(%q) = %s, want %s", tc.image, got, tc.want)
			}
		})
	}
}

func TestQOSClass(t *testing.T) {
	rl := func(cpu, mem string) corev1.ResourceList {
		l := corev1.ResourceList{}
		if cpu != "" {
			l[corev1.ResourceCPU] = resource.MustParse(cpu)
		}
		if mem != "" {
			l[corev1.ResourceMemory] = resource.MustParse(mem)
		}
		return l
	}
	pod := func(rs ...corev1.ResourceRequirements) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: meta("p")}
		for i, r := range rs {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: string(rune('a' + i)), Image: "x:1", Resources: r})
		}
		return p
	}
	tests := []struct {
		name string
		pod  *corev1.Pod
		want corev1.PodQOSClass
	}{
		{"no resources", pod(corev1.ResourceRequirements{}), corev1.PodQOSBestEffort},
		{"limits only become requests", pod(corev1.ResourceRequirements{Limits: rl("1", "1Gi")}), corev1.PodQOSGuaranteed},
		{"requests below limits", pod(corev1.ResourceRequirements{Requests: rl("100m", "1Gi"), Limits: rl("1", "1Gi")}), corev1.PodQOSBurstable},
		{"cpu limit only", pod(corev1.ResourceRequirements{Limits: rl("1", "")}), corev1.PodQOSBurstable},
		{"one container without limits", pod(corev1.ResourceRequirements{Limits: rl("1", "1Gi")}, corev1.ResourceRequirements{}), corev1.PodQOSBurstable},
	}
	if len(tests) == 0 {
		t.Fatal("empty test table")
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			Default(tc.pod)
			if tc.pod.Status.QOSClass != tc.want {
				t.Errorf("qosClass = %s, want %s", tc.pod.Status.QOSClass, tc.want)
			}
		})
	}
}

func TestDefaultServiceUpdate(t *testing.T) {
	stored := func() *corev1.Service {
		s := &corev1.Service{ObjectMeta: meta("s"), Spec: corev1.ServiceSpec{
			Type:      corev1.ServiceTypeNodePort,
			ClusterIP: "10.96.0.20",
			Ports:     []corev1.ServicePort{{Port: 80, NodePort: 30080}},
		}}
		Default(s)
		return s
	}
	tests := []struct {
		name   string
		update func(*corev1.Service)
		check  func(t *testing.T, s *corev1.Service)
	}{
		{
			name: "client that only knows clusterIP keeps clusterIPs",
			update: func(s *corev1.Service) {
				s.Spec.ClusterIPs = nil
				s.Spec.IPFamilyPolicy = nil
			},
			check: func(t *testing.T, s *corev1.Service) {
				if diff := cmp.Diff([]string{"10.96.0.20"}, s.Spec.ClusterIPs); diff != "" {
					t.Errorf("clusterIPs (-want +got):\n%s", diff)
				}
			},
		},
		{
			name: "replacing with the original manifest keeps allocated values",
			update: func(s *corev1.Service) {
				*s = corev1.Service{ObjectMeta: s.ObjectMeta, Spec: corev1.ServiceSpec{
					Type:  corev1.ServiceTypeNodePort,
					Ports: []corev1.ServicePort{{Port: 80}},
				}}
			},
			check: func(t *testing.T, s *corev1.Service) {
				if s.Spec.ClusterIP != "10.96.0.20" || len(s.Spec.ClusterIPs) != 1 || s.Spec.Ports[0].NodePort != 30080 {
					t.Errorf("clusterIP = %q, clusterIPs = %v, nodePort = %d; want the stored ones", s.Spec.ClusterIP, s.Spec.ClusterIPs, s.Spec.Ports[0].NodePort)
				}
			},
		},
		{
			name:   "changing only clusterIP is what the client meant",
			update: func(s *corev1.Service) { s.Spec.ClusterIP = "10.96.0.21" },
			check: func(t *testing.T, s *corev1.Service) {
				if diff := cmp.Diff([]string{"10.96.0.21"}, s.Spec.ClusterIPs); diff != "" {
					t.Errorf("clusterIPs (-want +got):\n%s", diff)
				}
			},
		},
		{
			name:   "nodeport turned clusterip drops carried-over node ports",
			update: func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeClusterIP },
			check: func(t *testing.T, s *corev1.Service) {
				if s.Spec.Ports[0].NodePort != 0 || s.Spec.ExternalTrafficPolicy != "" {
					t.Errorf("nodePort = %d, externalTrafficPolicy = %q; want both cleared", s.Spec.Ports[0].NodePort, s.Spec.ExternalTrafficPolicy)
				}
			},
		},
		{
			name: "turned externalname drops cluster IPs and families",
			update: func(s *corev1.Service) {
				s.Spec.Type = corev1.ServiceTypeExternalName
				s.Spec.ExternalName = "db.example.com"
			},
			check: func(t *testing.T, s *corev1.Service) {
				if s.Spec.ClusterIP != "" || s.Spec.ClusterIPs != nil || s.Spec.IPFamilies != nil || s.Spec.IPFamilyPolicy != nil {
					t.Errorf("spec = %+v; want cluster IP fields cleared", s.Spec)
				}
			},
		},
	}
	if len(tests) == 0 {
		t.Fatal("empty test table")
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			old := stored()
			svc := old.DeepCopy()
			tc.update(svc)
			Default(svc)
			DefaultServiceUpdate(svc, old)
			tc.check(t, svc)
			if diff := cmp.Diff(stored(), old); diff != "" {
				t.Errorf("old object modified (-want +got):\n%s", diff)
			}
		})
	}
}
