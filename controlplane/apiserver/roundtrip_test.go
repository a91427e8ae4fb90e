package apiserver_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	clientv3 "go.etcd.io/etcd/client/v3"
	"sigs.k8s.io/yaml"

	"weir.dev/weir/test/cluster"
)

// The acceptance tests in this file and badinput_test.go drive one real
// server (embedded etcd, TLS, admin token) per test function through raw
// HTTP, the way kubectl and curl reach it, and read etcd directly to see
// what was stored.

// rawAPI sends raw HTTP requests to a test server as the admin.
type rawAPI struct {
	s  *cluster.Server
	hc *http.Client
}

func startRaw(t *testing.T) (*cluster.Server, rawAPI) {
	t.Helper()
	s := startAPI(t)
	return s, rawAPI{s: s, hc: s.HTTPClient()}
}

// httpReply is one HTTP answer.
type httpReply struct {
	method, path string
	code         int
	header       http.Header
	body         []byte
}

func (r httpReply) String() string {
	b := r.body
	if len(b) > 2000 {
		b = append(b[:2000:2000], "…"...)
	}
	return fmt.Sprintf("%s %s: HTTP %d: %s", r.method, r.path, r.code, b)
}

// do sends one request; hdr holds further header name/value pairs.
func (c rawAPI) do(t *testing.T, method, path, contentType, body string, hdr ...string) httpReply {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, c.s.URL+path, rd)
	if err != nil {
		t.Fatalf("build %s %s: %v", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.s.AdminToken)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return httpReply{method: method, path: path, code: resp.StatusCode, header: resp.Header, body: b}
}

// want fails the test unless the httpReply has the given status code.
func (r httpReply) want(t *testing.T, code int) httpReply {
	t.Helper()
	if r.code != code {
		t.Fatalf("want HTTP %d, got %s", code, r)
	}
	return r
}

// object decodes a JSON httpReply body; numbers stay json.Number.
func (r httpReply) object(t *testing.T) jsonObj {
	t.Helper()
	o, err := decodeJSONObj(r.body)
	if err != nil {
		t.Fatalf("%s: decode JSON body: %v", r, err)
	}
	return o
}

func decodeJSONObj(b []byte) (jsonObj, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var o jsonObj
	if err := d.Decode(&o); err != nil {
		return nil, err
	}
	return o, nil
}

// jsonObj is a decoded JSON object, addressed by paths such as
// `spec.template.spec.containers[0].image` or `metadata.labels["app"]`.
type jsonObj map[string]any

type pathStep struct {
	key   string
	index int // -1 for a key pathStep
}

func parseJSONPath(p string) []pathStep {
	var out []pathStep
	for i := 0; i < len(p); {
		switch {
		case p[i] == '.':
			i++
		case strings.HasPrefix(p[i:], `["`):
			end := strings.Index(p[i:], `"]`)
			out = append(out, pathStep{key: p[i+2 : i+end], index: -1})
			i += end + 2
		case p[i] == '[':
			end := strings.IndexByte(p[i:], ']')
			n, err := strconv.Atoi(p[i+1 : i+end])
			if err != nil {
				panic(fmt.Sprintf("bad path %q", p))
			}
			out = append(out, pathStep{index: n})
			i += end + 1
		default:
			j := i
			for j < len(p) && p[j] != '.' && p[j] != '[' {
				j++
			}
			out = append(out, pathStep{key: p[i:j], index: -1})
			i = j
		}
	}
	return out
}

// get returns the value at path and whether it is there.
func (o jsonObj) get(path string) (any, bool) {
	var cur any = map[string]any(o)
	for _, s := range parseJSONPath(path) {
		if s.index < 0 {
			m, ok := cur.(map[string]any)
			if !ok {
				return nil, false
			}
			if cur, ok = m[s.key]; !ok {
				return nil, false
			}
			continue
		}
		l, ok := cur.([]any)
		if !ok || s.index >= len(l) {
			return nil, false
		}
		cur = l[s.index]
	}
	return cur, true
}

// str renders the value at path: strings, numbers and booleans as
// themselves, objects and lists as JSON, a missing value as "<absent>".
func (o jsonObj) str(path string) string {
	v, ok := o.get(path)
	if !ok {
		return "<absent>"
	}
	return renderJSON(v)
}

func renderJSON(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case map[string]any, []any, nil:
		b, _ := json.Marshal(x)
		return string(b)
	}
	return fmt.Sprint(v)
}

// set puts v at path, creating missing objects on the way.
func (o jsonObj) set(t *testing.T, path string, v any) {
	t.Helper()
	steps := parseJSONPath(path)
	var cur any = map[string]any(o)
	for i, s := range steps {
		last := i == len(steps)-1
		if s.index < 0 {
			m, ok := cur.(map[string]any)
			if !ok {
				t.Fatalf("set %s: %q is not inside an object", path, s.key)
			}
			if last {
				m[s.key] = v
				return
			}
			next, ok := m[s.key]
			if !ok || next == nil {
				next = map[string]any{}
				m[s.key] = next
			}
			cur = next
			continue
		}
		l, ok := cur.([]any)
		if !ok || s.index >= len(l) {
			t.Fatalf("set %s: no element %d", path, s.index)
		}
		if last {
			l[s.index] = v
			return
		}
		cur = l[s.index]
	}
}

func (o jsonObj) marshal(t *testing.T) string {
	t.Helper()
	b, err := json.Marshal(o)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return string(b)
}

// etcdGetKey reads one key straight from etcd; ok is false when it is absent.
func etcdGetKey(t *testing.T, s *cluster.Server, key string) (value []byte, modRev int64, ok bool) {
	t.Helper()
	resp, err := s.Store.Client().Get(t.Context(), key)
	if err != nil {
		t.Fatalf("etcd get %s: %v", key, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, 0, false
	}
	return resp.Kvs[0].Value, resp.Kvs[0].ModRevision, true
}

// etcdWrittenSince lists the keys etcd holds with a ModRevision after rev.
func etcdWrittenSince(t *testing.T, s *cluster.Server, rev int64) []string {
	t.Helper()
	resp, err := s.Store.Client().Get(t.Context(), "\x00", clientv3.WithFromKey(), clientv3.WithKeysOnly(), clientv3.WithMinModRev(rev+1))
	if err != nil {
		t.Fatalf("etcd list keys written since %d: %v", rev, err)
	}
	var out []string
	for _, kv := range resp.Kvs {
		out = append(out, fmt.Sprintf("%s@%d", kv.Key, kv.ModRevision))
	}
	return out
}

// rtKindCase is one kind's round trip through the API.
type rtKindCase struct {
	kind       string
	group      string // "" for core
	version    string
	plural     string
	namespaced bool
	name       string
	yaml       bool // send the manifest as YAML (else JSON)
	manifest   string
	// defaults maps paths to the values defaulting must have set.
	defaults map[string]string
	// check inspects the stored object further (allocations, generated fields).
	check func(t *testing.T, got jsonObj)
	// claims lists allocation keys the object holds in etcd: present while
	// it exists, released with it.
	claims  func(got jsonObj) []string
	hasSpec bool
	// update maps paths to new values sent in the PUT (besides a label).
	update      map[string]any
	specChanged bool
}

func (k rtKindCase) apiVersion() string {
	if k.group == "" {
		return k.version
	}
	return k.group + "/" + k.version
}

func (k rtKindCase) collection() string {
	p := "/apis/" + k.group + "/" + k.version
	if k.group == "" {
		p = "/api/" + k.version
	}
	if k.namespaced {
		p += "/namespaces/default"
	}
	return p + "/" + k.plural
}

func (k rtKindCase) item() string { return k.collection() + "/" + k.name }

func (k rtKindCase) etcdKey() string {
	g := k.group
	if g == "" {
		g = "core"
	}
	key := "/registry/" + g + "/" + k.plural + "/"
	if k.namespaced {
		key += "default/"
	}
	return key + k.name
}

func requireInPrefix(t *testing.T, what, value, prefix string) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(value)
	if err != nil {
		t.Fatalf("%s %q is not an IP address: %v", what, value, err)
	}
	if p := netip.MustParsePrefix(prefix); !p.Contains(a) {
		t.Errorf("%s %s is outside %s", what, a, p)
	}
	return a
}

func rtKindCases() []rtKindCase {
	return []rtKindCase{
		{
			kind: "Namespace", version: "v1", plural: "namespaces", name: "rt-ns", yaml: true,
			manifest: `
apiVersion: v1
kind: Namespace
metadata:
  name: rt-ns
`,
			defaults: map[string]string{
				"status.phase":    "Active",
				"spec.finalizers": `["kubernetes"]`,
				`metadata.labels["kubernetes.io/metadata.name"]`: "rt-ns",
			},
			hasSpec: true,
		},
		{
			kind: "Node", version: "v1", plural: "nodes", name: "rt-node",
			manifest: `{"apiVersion":"v1","kind":"Node","metadata":{"name":"rt-node","labels":{"kubernetes.io/hostname":"rt-node"}}}`,
			check: func(t *testing.T, got jsonObj) {
				cidr := got.str("spec.podCIDR")
				p, err := netip.ParsePrefix(cidr)
				if err != nil {
					t.Fatalf("spec.podCIDR %q is not a CIDR: %v", cidr, err)
				}
				if p.Bits() != 24 || !netip.MustParsePrefix("10.244.0.0/16").Contains(p.Addr()) || p.Masked() != p {
					t.Errorf("spec.podCIDR %s is not a /24 inside 10.244.0.0/16", p)
				}
				if got := got.str("spec.podCIDRs"); got != `["`+cidr+`"]` {
					t.Errorf("spec.podCIDRs = %s, want [%s]", got, cidr)
				}
			},
			claims: func(got jsonObj) []string {
				return []string{"/registry/ranges/podcidrs/" + strings.ReplaceAll(got.str("spec.podCIDR"), "/", "-")}
			},
			hasSpec:     true,
			update:      map[string]any{"spec.unschedulable": true},
			specChanged: true,
		},
		{
			kind: "Pod", version: "v1", plural: "pods", namespaced: true, name: "rt-pod", yaml: true,
			manifest: `
apiVersion: v1
kind: Pod
metadata:
  name: rt-pod
  labels:
    app: rt
spec:
  containers:
  - name: main
    image: busybox
    command: ["sleep", "3600"]
`,
			defaults: map[string]string{
				"spec.restartPolicy":                          "Always",
				"spec.dnsPolicy":                              "ClusterFirst",
				"spec.terminationGracePeriodSeconds":          "30",
				"spec.schedulerName":                          "default-scheduler",
				"spec.containers[0].terminationMessagePath":   "/dev/termination-log",
				"spec.containers[0].terminationMessagePolicy": "File",
				"spec.containers[0].imagePullPolicy":          "Always",
				"status.phase":                                "Pending",
				"status.qosClass":                             "BestEffort",
			},
			hasSpec:     true,
			update:      map[string]any{"spec.containers[0].image": "busybox:1.36"},
			specChanged: true,
		},
		{
			kind: "Service", version: "v1", plural: "services", namespaced: true, name: "rt-svc",
			manifest: `{"apiVersion":"v1","kind":"Service","metadata":{"name":"rt-svc"},"spec":{"selector":{"app":"rt"},"ports":[{"port":80}]}}`,
			defaults: map[string]string{
				"spec.type":                  "ClusterIP",
				"spec.ports[0].protocol":     "TCP",
				"spec.ports[0].targetPort":   "80",
				"spec.sessionAffinity":       "None",
				"spec.internalTrafficPolicy": "Cluster",
			},
			check: func(t *testing.T, got jsonObj) {
				ip := got.str("spec.clusterIP")
				requireInPrefix(t, "spec.clusterIP", ip, "10.96.0.0/12")
				if got := got.str("spec.clusterIPs"); got != `["`+ip+`"]` {
					t.Errorf("spec.clusterIPs = %s, want [%s]", got, ip)
				}
				if np := got.str("spec.ports[0].nodePort"); np != "<absent>" {
					t.Errorf("a ClusterIP Service got spec.ports[0].nodePort %s", np)
				}
			},
			claims: func(got jsonObj) []string {
				return []string{"/registry/ranges/serviceips/" + got.str("spec.clusterIP")}
			},
			hasSpec:     true,
			update:      map[string]any{"spec.publishNotReadyAddresses": true},
			specChanged: true,
		},
		{
			kind: "Endpoints", version: "v1", plural: "endpoints", namespaced: true, name: "rt-ep", yaml: true,
			manifest: `
apiVersion: v1
kind: Endpoints
metadata:
  name: rt-ep
subsets:
- addresses:
  - ip: 10.244.1.5
  ports:
  - port: 8080
`,
			defaults: map[string]string{"subsets[0].ports[0].protocol": "TCP"},
			update:   map[string]any{"subsets[0].addresses[0].ip": "10.244.1.6"},
		},
		{
			kind: "ConfigMap", version: "v1", plural: "configmaps", namespaced: true, name: "rt-cm",
			manifest: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"rt-cm"},"data":{"a":"1"}}`,
			// ConfigMaps have no defaults; the system fields are checked for every kind.
			defaults: map[string]string{"data.a": "1"},
			update:   map[string]any{"data.a": "2"},
		},
		{
			kind: "Secret", version: "v1", plural: "secrets", namespaced: true, name: "rt-secret", yaml: true,
			manifest: `
apiVersion: v1
kind: Secret
metadata:
  name: rt-secret
stringData:
  password: hunter2
`,
			defaults: map[string]string{
				"type":          "Opaque",
				"data.password": "aHVudGVyMg==", // stringData folded into data
				"stringData":    "<absent>",
			},
			update: map[string]any{"data.user": "YWRtaW4="},
		},
		{
			kind: "Event", version: "v1", plural: "events", namespaced: true, name: "rt-event",
			manifest: `{"apiVersion":"v1","kind":"Event","metadata":{"name":"rt-event"},
				"involvedObject":{"kind":"Pod","namespace":"default","name":"rt-pod"},
				"reason":"Started","message":"started","type":"Normal","source":{"component":"test"},"count":1}`,
			// core/v1 Events have no defaults.
			defaults: map[string]string{"involvedObject.name": "rt-pod"},
			update:   map[string]any{"count": 2, "message": "started again"},
		},
		{
			kind: "EndpointSlice", group: "discovery.k8s.io", version: "v1", plural: "endpointslices", namespaced: true, name: "rt-slice", yaml: true,
			manifest: `
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: rt-slice
  labels:
    kubernetes.io/service-name: rt-svc
addressType: IPv4
endpoints:
- addresses: ["10.244.1.5"]
ports:
- port: 8080
`,
			defaults: map[string]string{"ports[0].protocol": "TCP", "ports[0].name": ""},
			update:   map[string]any{"endpoints[0].addresses": []any{"10.244.1.7"}},
		},
		{
			kind: "Lease", group: "coordination.k8s.io", version: "v1", plural: "leases", namespaced: true, name: "rt-lease",
			manifest: `{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"rt-lease"},"spec":{"holderIdentity":"a","leaseDurationSeconds":15}}`,
			// Leases have no defaults.
			defaults:    map[string]string{"spec.holderIdentity": "a"},
			hasSpec:     true,
			update:      map[string]any{"spec.holderIdentity": "b"},
			specChanged: true,
		},
		{
			kind: "Deployment", group: "apps", version: "v1", plural: "deployments", namespaced: true, name: "rt-deploy", yaml: true,
			manifest: `
apiVersion: apps/v1
kind: Deployment
metadata:
  name: rt-deploy
spec:
  selector:
    matchLabels:
      app: rt-deploy
  template:
    metadata:
      labels:
        app: rt-deploy
    spec:
      containers:
      - name: web
        image: nginx
`,
			defaults: map[string]string{
				"spec.replicas":                              "1",
				"spec.strategy.type":                         "RollingUpdate",
				"spec.strategy.rollingUpdate.maxSurge":       "25%",
				"spec.strategy.rollingUpdate.maxUnavailable": "25%",
				"spec.revisionHistoryLimit":                  "10",
				"spec.progressDeadlineSeconds":               "600",
				"spec.template.spec.restartPolicy":           "Always",
				"spec.template.spec.dnsPolicy":               "ClusterFirst",
			},
			hasSpec:     true,
			update:      map[string]any{"spec.replicas": 3},
			specChanged: true,
		},
		{
			kind: "ReplicaSet", group: "apps", version: "v1", plural: "replicasets", namespaced: true, name: "rt-rs",
			manifest: `{"apiVersion":"apps/v1","kind":"ReplicaSet","metadata":{"name":"rt-rs"},"spec":{
				"selector":{"matchLabels":{"app":"rt-rs"}},
				"template":{"metadata":{"labels":{"app":"rt-rs"}},"spec":{"containers":[{"name":"web","image":"nginx"}]}}}}`,
			defaults: map[string]string{
				"spec.replicas":                    "1",
				"spec.template.spec.restartPolicy": "Always",
			},
			hasSpec:     true,
			update:      map[string]any{"spec.replicas": 2},
			specChanged: true,
		},
		{
			kind: "DaemonSet", group: "apps", version: "v1", plural: "daemonsets", namespaced: true, name: "rt-ds",
			manifest: `{"apiVersion":"apps/v1","kind":"DaemonSet","metadata":{"name":"rt-ds"},"spec":{
				"selector":{"matchLabels":{"app":"rt-ds"}},
				"template":{"metadata":{"labels":{"app":"rt-ds"}},"spec":{"containers":[{"name":"agent","image":"busybox"}]}}}}`,
			defaults: map[string]string{
				"spec.updateStrategy.type":                         "RollingUpdate",
				"spec.updateStrategy.rollingUpdate.maxUnavailable": "1",
				"spec.revisionHistoryLimit":                        "10",
			},
			hasSpec:     true,
			update:      map[string]any{"spec.minReadySeconds": 5},
			specChanged: true,
		},
		{
			kind: "StatefulSet", group: "apps", version: "v1", plural: "statefulsets", namespaced: true, name: "rt-sts", yaml: true,
			manifest: `
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: rt-sts
spec:
  serviceName: rt-sts
  selector:
    matchLabels:
      app: rt-sts
  template:
    metadata:
      labels:
        app: rt-sts
    spec:
      containers:
      - name: db
        image: busybox
`,
			defaults: map[string]string{
				"spec.podManagementPolicy":                    "OrderedReady",
				"spec.updateStrategy.type":                    "RollingUpdate",
				"spec.updateStrategy.rollingUpdate.partition": "0",
				"spec.replicas":                               "1",
				"spec.revisionHistoryLimit":                   "10",
			},
			hasSpec:     true,
			update:      map[string]any{"spec.replicas": 2},
			specChanged: true,
		},
		{
			kind: "ControllerRevision", group: "apps", version: "v1", plural: "controllerrevisions", namespaced: true, name: "rt-cr", yaml: true,
			manifest: `
apiVersion: apps/v1
kind: ControllerRevision
metadata:
  name: rt-cr
revision: 1
data:
  spec:
    template:
      metadata:
        labels:
          app: rt-ds
`,
			// ControllerRevisions have no defaults.
			defaults: map[string]string{"revision": "1", `data.spec.template.metadata.labels["app"]`: "rt-ds"},
		},
		{
			kind: "Job", group: "batch", version: "v1", plural: "jobs", namespaced: true, name: "rt-job", yaml: true,
			manifest: `
apiVersion: batch/v1
kind: Job
metadata:
  name: rt-job
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: work
        image: busybox
        command: ["true"]
`,
			defaults: map[string]string{
				"spec.backoffLimit":   "6",
				"spec.completions":    "1",
				"spec.parallelism":    "1",
				"spec.completionMode": "NonIndexed",
				"spec.suspend":        "false",
				`spec.template.metadata.labels["batch.kubernetes.io/job-name"]`: "rt-job",
			},
			check: func(t *testing.T, got jsonObj) {
				uid := got.str("metadata.uid")
				if sel := got.str(`spec.selector.matchLabels["batch.kubernetes.io/controller-uid"]`); sel != uid {
					t.Errorf("spec.selector controller-uid = %s, want the Job's uid %s", sel, uid)
				}
			},
			hasSpec:     true,
			update:      map[string]any{"spec.suspend": true},
			specChanged: true,
		},
		{
			kind: "CronJob", group: "batch", version: "v1", plural: "cronjobs", namespaced: true, name: "rt-cron",
			manifest: `{"apiVersion":"batch/v1","kind":"CronJob","metadata":{"name":"rt-cron"},"spec":{"schedule":"*/1 * * * *",
				"jobTemplate":{"spec":{"template":{"spec":{"restartPolicy":"OnFailure","containers":[{"name":"work","image":"busybox"}]}}}}}}`,
			defaults: map[string]string{
				"spec.concurrencyPolicy":          "Allow",
				"spec.successfulJobsHistoryLimit": "3",
				"spec.failedJobsHistoryLimit":     "1",
				"spec.suspend":                    "false",
			},
			hasSpec:     true,
			update:      map[string]any{"spec.schedule": "*/5 * * * *"},
			specChanged: true,
		},
		{
			kind: "HorizontalPodAutoscaler", group: "autoscaling", version: "v2", plural: "horizontalpodautoscalers", namespaced: true, name: "rt-hpa", yaml: true,
			manifest: `
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: rt-hpa
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: rt-deploy
  maxReplicas: 3
`,
			defaults: map[string]string{
				"spec.minReplicas":                                   "1",
				"spec.metrics[0].type":                               "Resource",
				"spec.metrics[0].resource.name":                      "cpu",
				"spec.metrics[0].resource.target.averageUtilization": "80",
			},
			hasSpec:     true,
			update:      map[string]any{"spec.maxReplicas": 5},
			specChanged: true,
		},
	}
}

// TestRoundTrip creates, reads, updates and deletes an object of every kind
// through the HTTP API, then covers legacy apiVersions, subresources,
// patches and YAML answers, all against one server.
func TestRoundTrip(t *testing.T) {
	s, c := startRaw(t)

	cases := rtKindCases()
	if len(cases) == 0 {
		t.Fatal("no kinds to round-trip")
	}
	for _, tc := range cases {
		t.Run(tc.kind, func(t *testing.T) { roundTripKind(t, s, c, tc) })
	}

	t.Run("generateName", func(t *testing.T) {
		r := c.do(t, "POST", "/api/v1/namespaces/default/configmaps", "application/json",
			`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"generateName":"gen-"},"data":{"a":"b"}}`).want(t, http.StatusCreated)
		name := r.object(t).str("metadata.name")
		if !strings.HasPrefix(name, "gen-") || len(name) <= len("gen-") {
			t.Fatalf("generated name %q does not extend the prefix gen-", name)
		}
		got := c.do(t, "GET", "/api/v1/namespaces/default/configmaps/"+name, "", "").want(t, http.StatusOK).object(t)
		if g := got.str("metadata.generateName"); g != "gen-" {
			t.Errorf("metadata.generateName = %q, want gen-", g)
		}
		if _, _, ok := etcdGetKey(t, s, "/registry/core/configmaps/default/"+name); !ok {
			t.Errorf("no etcd key for generated ConfigMap %s", name)
		}
	})

	t.Run("legacy", func(t *testing.T) { testLegacyVersions(t, s, c) })
	t.Run("status", func(t *testing.T) { testStatusSubresource(t, c) })
	t.Run("scale", func(t *testing.T) { testScaleSubresource(t, c) })
	t.Run("binding", func(t *testing.T) { testBindingSubresource(t, c) })
	t.Run("nodePort", func(t *testing.T) { testNodePorts(t, s, c) })
	t.Run("patch", func(t *testing.T) { testPatches(t, c) })
	t.Run("yamlResponse", func(t *testing.T) { testYAMLResponse(t, c) })
}

func roundTripKind(t *testing.T, s *cluster.Server, c rawAPI, tc rtKindCase) {
	ct := "application/json"
	if tc.yaml {
		ct = "application/yaml"
	}

	// Create.
	created := c.do(t, "POST", tc.collection(), ct, tc.manifest).want(t, http.StatusCreated).object(t)
	if got := created.str("metadata.name"); got != tc.name {
		t.Fatalf("created metadata.name = %q, want %q", got, tc.name)
	}

	// Read back: system metadata, defaults, allocations, the etcd key.
	got := c.do(t, "GET", tc.item(), "", "").want(t, http.StatusOK).object(t)
	if a, k := got.str("apiVersion"), got.str("kind"); a != tc.apiVersion() || k != tc.kind {
		t.Errorf("apiVersion/kind = %s/%s, want %s/%s", a, k, tc.apiVersion(), tc.kind)
	}
	uid := got.str("metadata.uid")
	if uid == "<absent>" || uid == "" {
		t.Errorf("metadata.uid not set")
	}
	if cu := created.str("metadata.uid"); cu != uid {
		t.Errorf("uid from create %s, from get %s", cu, uid)
	}
	if ts, err := time.Parse(time.RFC3339, got.str("metadata.creationTimestamp")); err != nil || time.Since(ts) > 5*time.Minute {
		t.Errorf("metadata.creationTimestamp = %q (%v), want a recent RFC 3339 time", got.str("metadata.creationTimestamp"), err)
	}
	rv := got.str("metadata.resourceVersion")
	if n, err := strconv.ParseInt(rv, 10, 64); err != nil || n <= 0 {
		t.Errorf("metadata.resourceVersion = %q, want a positive integer", rv)
	}
	if crv := created.str("metadata.resourceVersion"); crv != rv {
		t.Errorf("resourceVersion from create %s, from get %s", crv, rv)
	}
	if _, modRev, ok := etcdGetKey(t, s, tc.etcdKey()); !ok {
		t.Errorf("no etcd key %s", tc.etcdKey())
	} else if strconv.FormatInt(modRev, 10) != rv {
		t.Errorf("resourceVersion %s is not the ModRevision %d of %s", rv, modRev, tc.etcdKey())
	}
	if tc.hasSpec {
		if g := got.str("metadata.generation"); g != "1" {
			t.Errorf("metadata.generation = %s, want 1", g)
		}
	}
	for _, p := range sortedMapKeys(tc.defaults) {
		if v := got.str(p); v != tc.defaults[p] {
			t.Errorf("%s = %s, want %s", p, v, tc.defaults[p])
		}
	}
	if tc.check != nil {
		tc.check(t, got)
	}
	var claims []string
	if tc.claims != nil {
		claims = tc.claims(got)
		for _, k := range claims {
			if _, _, ok := etcdGetKey(t, s, k); !ok {
				t.Errorf("allocation claim %s missing while the object exists", k)
			}
		}
	}

	// Update with the resourceVersion just read.
	got.set(t, `metadata.labels["round"]`, "trip")
	for _, p := range sortedMapKeys(tc.update) {
		got.set(t, p, tc.update[p])
	}
	put := c.do(t, "PUT", tc.item(), "application/json", got.marshal(t)).want(t, http.StatusOK).object(t)
	newRV := put.str("metadata.resourceVersion")
	if newRV == rv || newRV == "<absent>" {
		t.Errorf("resourceVersion after update = %s, before %s: want a new one", newRV, rv)
	}
	after := c.do(t, "GET", tc.item(), "", "").want(t, http.StatusOK).object(t)
	if v := after.str(`metadata.labels["round"]`); v != "trip" {
		t.Errorf("label round = %q after update, want trip", v)
	}
	for _, p := range sortedMapKeys(tc.update) {
		if v, want := after.str(p), renderJSON(asJSONValue(t, tc.update[p])); v != want {
			t.Errorf("%s = %s after update, want %s", p, v, want)
		}
	}
	if v := after.str("metadata.resourceVersion"); v != newRV {
		t.Errorf("resourceVersion read after update = %s, update answered %s", v, newRV)
	}
	if after.str("metadata.uid") != uid || after.str("metadata.creationTimestamp") != got.str("metadata.creationTimestamp") {
		t.Errorf("update changed uid or creationTimestamp: %s %s", after.str("metadata.uid"), after.str("metadata.creationTimestamp"))
	}
	if tc.hasSpec {
		want := "1"
		if tc.specChanged {
			want = "2"
		}
		if g := after.str("metadata.generation"); g != want {
			t.Errorf("metadata.generation after update = %s, want %s", g, want)
		}
	}

	// Delete.
	c.do(t, "DELETE", tc.item(), "", "").want(t, http.StatusOK)
	if tc.kind == "Namespace" {
		// The finalizer keeps it until the namespace controller empties it.
		cluster.Eventually(t, 30*time.Second, "namespace rt-ns Terminating or gone", func() (bool, error) {
			r := c.do(t, "GET", tc.item(), "", "")
			switch {
			case r.code == http.StatusNotFound:
				return true, nil
			case r.code == http.StatusOK:
				o := r.object(t)
				return o.str("status.phase") == "Terminating" && o.str("metadata.deletionTimestamp") != "<absent>", fmt.Errorf("phase %s", o.str("status.phase"))
			}
			return false, fmt.Errorf("%s", r)
		})
		return
	}
	r := c.do(t, "GET", tc.item(), "", "").want(t, http.StatusNotFound)
	st := requireStatus(t, r)
	if st.Reason != "NotFound" {
		t.Errorf("GET after delete: reason %q, want NotFound", st.Reason)
	}
	if _, _, ok := etcdGetKey(t, s, tc.etcdKey()); ok {
		t.Errorf("etcd key %s still there after delete", tc.etcdKey())
	}
	for _, k := range claims {
		if _, _, ok := etcdGetKey(t, s, k); ok {
			t.Errorf("allocation claim %s not released by delete", k)
		}
	}
}

// asJSONValue is v as it reads back from JSON.
func asJSONValue(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal %v: %v", v, err)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var out any
	if err := d.Decode(&out); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return out
}

func sortedMapKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// testLegacyVersions posts objects in the apiVersions old manifests carry.
func testLegacyVersions(t *testing.T, s *cluster.Server, c rawAPI) {
	cases := []struct {
		name       string
		path       string // where it is POSTed
		deprecated string // the apiVersion the warning must name
		manifest   string
		current    rtKindCase // where it is read back, and its etcd key
		// selectorFromTemplate: the object has no selector and must get its
		// template labels as one.
		selectorFromTemplate bool
	}{
		{
			name: "extensions/v1beta1 Deployment to apps/v1", path: "/apis/apps/v1/namespaces/default/deployments",
			deprecated: "extensions/v1beta1",
			manifest: `
apiVersion: extensions/v1beta1
kind: Deployment
metadata:
  name: legacy-deploy-a
spec:
  replicas: 1
  template:
    metadata:
      labels:
        app: legacy-a
        tier: web
    spec:
      containers:
      - name: web
        image: nginx
`,
			current:              rtKindCase{group: "apps", version: "v1", plural: "deployments", kind: "Deployment", namespaced: true, name: "legacy-deploy-a"},
			selectorFromTemplate: true,
		},
		{
			name: "extensions/v1beta1 Deployment to its legacy path", path: "/apis/extensions/v1beta1/namespaces/default/deployments",
			deprecated: "extensions/v1beta1",
			manifest: `{"apiVersion":"extensions/v1beta1","kind":"Deployment","metadata":{"name":"legacy-deploy-b"},"spec":{
				"template":{"metadata":{"labels":{"app":"legacy-b"}},"spec":{"containers":[{"name":"web","image":"nginx"}]}}}}`,
			current:              rtKindCase{group: "apps", version: "v1", plural: "deployments", kind: "Deployment", namespaced: true, name: "legacy-deploy-b"},
			selectorFromTemplate: true,
		},
		{
			name: "apps/v1beta1 StatefulSet", path: "/apis/apps/v1/namespaces/default/statefulsets",
			deprecated: "apps/v1beta1",
			manifest: `
apiVersion: apps/v1beta1
kind: StatefulSet
metadata:
  name: legacy-sts
spec:
  serviceName: legacy-sts
  selector:
    matchLabels:
      app: legacy-sts
  template:
    metadata:
      labels:
        app: legacy-sts
    spec:
      containers:
      - name: db
        image: busybox
`,
			current: rtKindCase{group: "apps", version: "v1", plural: "statefulsets", kind: "StatefulSet", namespaced: true, name: "legacy-sts"},
		},
		{
			name: "apps/v1beta2 DaemonSet to its legacy path", path: "/apis/apps/v1beta2/namespaces/default/daemonsets",
			deprecated: "apps/v1beta2",
			manifest: `{"apiVersion":"apps/v1beta2","kind":"DaemonSet","metadata":{"name":"legacy-ds"},"spec":{
				"selector":{"matchLabels":{"app":"legacy-ds"}},
				"template":{"metadata":{"labels":{"app":"legacy-ds"}},"spec":{"containers":[{"name":"agent","image":"busybox"}]}}}}`,
			current: rtKindCase{group: "apps", version: "v1", plural: "daemonsets", kind: "DaemonSet", namespaced: true, name: "legacy-ds"},
		},
		{
			name: "batch/v1beta1 CronJob", path: "/apis/batch/v1/namespaces/default/cronjobs",
			deprecated: "batch/v1beta1",
			manifest: `
apiVersion: batch/v1beta1
kind: CronJob
metadata:
  name: legacy-cron-b1
spec:
  schedule: "*/1 * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers:
          - name: work
            image: busybox
`,
			current: rtKindCase{group: "batch", version: "v1", plural: "cronjobs", kind: "CronJob", namespaced: true, name: "legacy-cron-b1"},
		},
		{
			name: "batch/v2alpha1 CronJob to its legacy path", path: "/apis/batch/v2alpha1/namespaces/default/cronjobs",
			deprecated: "batch/v2alpha1",
			manifest: `{"apiVersion":"batch/v2alpha1","kind":"CronJob","metadata":{"name":"legacy-cron-a1"},"spec":{"schedule":"0 * * * *",
				"jobTemplate":{"spec":{"template":{"spec":{"restartPolicy":"OnFailure","containers":[{"name":"work","image":"busybox"}]}}}}}}`,
			current: rtKindCase{group: "batch", version: "v1", plural: "cronjobs", kind: "CronJob", namespaced: true, name: "legacy-cron-a1"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ct := "application/json"
			if !strings.HasPrefix(strings.TrimSpace(tc.manifest), "{") {
				ct = "application/yaml"
			}
			r := c.do(t, "POST", tc.path, ct, tc.manifest).want(t, http.StatusCreated)
			warnings := r.header.Values("Warning")
			if !slices.ContainsFunc(warnings, func(w string) bool {
				return strings.HasPrefix(w, "299 ") && strings.Contains(w, tc.deprecated)
			}) {
				t.Errorf("Warning headers %q do not name the deprecated %s", warnings, tc.deprecated)
			}

			got := c.do(t, "GET", tc.current.item(), "", "").want(t, http.StatusOK).object(t)
			if a, k := got.str("apiVersion"), got.str("kind"); a != tc.current.apiVersion() || k != tc.current.kind {
				t.Errorf("read back as %s/%s, want %s/%s", a, k, tc.current.apiVersion(), tc.current.kind)
			}
			if g := got.str("metadata.generation"); g != "1" {
				t.Errorf("metadata.generation = %s, want 1", g)
			}
			val, _, ok := etcdGetKey(t, s, tc.current.etcdKey())
			if !ok {
				t.Fatalf("no etcd key %s", tc.current.etcdKey())
			}
			stored, err := decodeJSONObj(val)
			if err != nil {
				t.Fatalf("stored value of %s is not JSON: %v", tc.current.etcdKey(), err)
			}
			if a := stored.str("apiVersion"); a != tc.current.apiVersion() {
				t.Errorf("etcd holds apiVersion %s, want %s", a, tc.current.apiVersion())
			}
			if tc.selectorFromTemplate {
				sel, _ := got.get("spec.selector.matchLabels")
				labels, _ := got.get("spec.template.metadata.labels")
				if labels == nil {
					t.Fatalf("no template labels in %s", got.marshal(t))
				}
				if d := cmp.Diff(labels, sel); d != "" {
					t.Errorf("spec.selector.matchLabels is not the template labels (-labels +selector):\n%s", d)
				}
			}
		})
	}
}

const deploymentJSONFmt = `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":%q},"spec":{
	"selector":{"matchLabels":{"app":%q}},
	"template":{"metadata":{"labels":{"app":%q}},"spec":{"containers":[%s]}}}}`

func postDeployment(t *testing.T, c rawAPI, name, containers string) jsonObj {
	t.Helper()
	if containers == "" {
		containers = `{"name":"web","image":"nginx"}`
	}
	return c.do(t, "POST", "/apis/apps/v1/namespaces/default/deployments", "application/json",
		fmt.Sprintf(deploymentJSONFmt, name, name, name, containers)).want(t, http.StatusCreated).object(t)
}

// testStatusSubresource: /status changes status only; the main resource
// changes everything but status.
func testStatusSubresource(t *testing.T, c rawAPI) {
	const path = "/apis/apps/v1/namespaces/default/deployments/status-deploy"
	postDeployment(t, c, "status-deploy", "")
	cur := c.do(t, "GET", path, "", "").want(t, http.StatusOK).object(t)
	cur.set(t, "status.replicas", 7)
	cur.set(t, "status.observedGeneration", 1)
	cur.set(t, "spec.replicas", 9)
	cur.set(t, `metadata.labels["via"]`, "status")
	c.do(t, "PUT", path+"/status", "application/json", cur.marshal(t)).want(t, http.StatusOK)

	got := c.do(t, "GET", path, "", "").want(t, http.StatusOK).object(t)
	for p, want := range map[string]string{
		"status.replicas":           "7",
		"status.observedGeneration": "1",
		"spec.replicas":             "1",
		"metadata.generation":       "1",
	} {
		if v := got.str(p); v != want {
			t.Errorf("after PUT /status: %s = %s, want %s", p, v, want)
		}
	}
	if got.str("metadata.resourceVersion") == cur.str("metadata.resourceVersion") {
		t.Errorf("PUT /status did not write (resourceVersion unchanged)")
	}

	// A write to the main resource keeps the status.
	got.set(t, "status.replicas", 99)
	got.set(t, "spec.replicas", 2)
	c.do(t, "PUT", path, "application/json", got.marshal(t)).want(t, http.StatusOK)
	again := c.do(t, "GET", path, "", "").want(t, http.StatusOK).object(t)
	if v := again.str("status.replicas"); v != "7" {
		t.Errorf("PUT to the main resource changed status.replicas to %s, want 7 kept", v)
	}
	if v := again.str("spec.replicas"); v != "2" {
		t.Errorf("PUT to the main resource: spec.replicas = %s, want 2", v)
	}
}

func testScaleSubresource(t *testing.T, c rawAPI) {
	const path = "/apis/apps/v1/namespaces/default/deployments/scale-deploy"
	postDeployment(t, c, "scale-deploy", "")
	sc := c.do(t, "GET", path+"/scale", "", "").want(t, http.StatusOK).object(t)
	for p, want := range map[string]string{
		"apiVersion":         "autoscaling/v1",
		"kind":               "Scale",
		"metadata.name":      "scale-deploy",
		"metadata.namespace": "default",
		"spec.replicas":      "1",
		"status.selector":    "app=scale-deploy",
	} {
		if v := sc.str(p); v != want {
			t.Errorf("GET /scale: %s = %s, want %s", p, v, want)
		}
	}
	rv := sc.str("metadata.resourceVersion")

	sc.set(t, "spec.replicas", 4)
	out := c.do(t, "PUT", path+"/scale", "application/json", sc.marshal(t)).want(t, http.StatusOK).object(t)
	if v := out.str("spec.replicas"); v != "4" {
		t.Errorf("PUT /scale answered spec.replicas %s, want 4", v)
	}
	d := c.do(t, "GET", path, "", "").want(t, http.StatusOK).object(t)
	if v := d.str("spec.replicas"); v != "4" {
		t.Errorf("Deployment spec.replicas = %s after PUT /scale, want 4", v)
	}
	if v := d.str("metadata.generation"); v != "2" {
		t.Errorf("Deployment metadata.generation = %s after PUT /scale, want 2", v)
	}

	// The Scale's resourceVersion is a precondition: the old one conflicts.
	sc.set(t, "metadata.resourceVersion", rv)
	sc.set(t, "spec.replicas", 6)
	r := c.do(t, "PUT", path+"/scale", "application/json", sc.marshal(t)).want(t, http.StatusConflict)
	if st := requireStatus(t, r); st.Reason != "Conflict" {
		t.Errorf("stale PUT /scale: reason %q, want Conflict", st.Reason)
	}
	if v := c.do(t, "GET", path, "", "").want(t, http.StatusOK).object(t).str("spec.replicas"); v != "4" {
		t.Errorf("stale PUT /scale changed spec.replicas to %s", v)
	}
}

func testBindingSubresource(t *testing.T, c rawAPI) {
	const path = "/api/v1/namespaces/default/pods/bind-pod"
	c.do(t, "POST", "/api/v1/namespaces/default/pods", "application/json",
		`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"bind-pod"},"spec":{"containers":[{"name":"c","image":"busybox"}]}}`).want(t, http.StatusCreated)
	binding := func(node string) string {
		return `{"apiVersion":"v1","kind":"Binding","metadata":{"name":"bind-pod"},"target":{"apiVersion":"v1","kind":"Node","name":"` + node + `"}}`
	}
	c.do(t, "POST", path+"/binding", "application/json", binding("node-a")).want(t, http.StatusCreated)

	pod := c.do(t, "GET", path, "", "").want(t, http.StatusOK).object(t)
	if v := pod.str("spec.nodeName"); v != "node-a" {
		t.Errorf("spec.nodeName = %q after binding, want node-a", v)
	}
	conds, _ := pod.get("status.conditions")
	list, _ := conds.([]any)
	scheduled := ""
	for _, cnd := range list {
		if m, ok := cnd.(map[string]any); ok && m["type"] == "PodScheduled" {
			scheduled = renderJSON(m["status"])
		}
	}
	if scheduled != "True" {
		t.Errorf("PodScheduled condition = %q, want True; conditions %s", scheduled, renderJSON(conds))
	}

	r := c.do(t, "POST", path+"/binding", "application/json", binding("node-b")).want(t, http.StatusConflict)
	if st := requireStatus(t, r); st.Reason != "Conflict" {
		t.Errorf("second binding: reason %q, want Conflict", st.Reason)
	}
	if v := c.do(t, "GET", path, "", "").want(t, http.StatusOK).object(t).str("spec.nodeName"); v != "node-a" {
		t.Errorf("second binding moved the pod to %q", v)
	}
}

func nodePortServiceJSON(name string, ports ...int) string {
	var ps []string
	for i, p := range ports {
		np := ""
		if p != 0 {
			np = fmt.Sprintf(`,"nodePort":%d`, p)
		}
		ps = append(ps, fmt.Sprintf(`{"name":"p%d","port":%d%s}`, i, 80+i, np))
	}
	return fmt.Sprintf(`{"apiVersion":"v1","kind":"Service","metadata":{"name":%q},"spec":{"type":"NodePort","selector":{"app":%q},"ports":[%s]}}`,
		name, name, strings.Join(ps, ","))
}

func testNodePorts(t *testing.T, s *cluster.Server, c rawAPI) {
	const svcsPath = "/api/v1/namespaces/default/services"
	const port = 30555
	claim := "/registry/ranges/servicenodeports/" + strconv.Itoa(port)

	a := c.do(t, "POST", svcsPath, "application/json", nodePortServiceJSON("np-a", port)).want(t, http.StatusCreated).object(t)
	if v := a.str("spec.ports[0].nodePort"); v != strconv.Itoa(port) {
		t.Fatalf("np-a got nodePort %s, want the requested %d", v, port)
	}
	if _, _, ok := etcdGetKey(t, s, claim); !ok {
		t.Errorf("no claim %s for np-a's nodePort", claim)
	}

	auto := c.do(t, "POST", svcsPath, "application/json", nodePortServiceJSON("np-auto", 0, 0)).want(t, http.StatusCreated).object(t)
	seen := map[string]bool{}
	for i := range 2 {
		v := auto.str(fmt.Sprintf("spec.ports[%d].nodePort", i))
		n, err := strconv.Atoi(v)
		if err != nil || n < 30000 || n > 32767 {
			t.Errorf("np-auto spec.ports[%d].nodePort = %s, want one in 30000-32767", i, v)
		}
		if seen[v] || v == strconv.Itoa(port) {
			t.Errorf("np-auto spec.ports[%d].nodePort %s is already in use", i, v)
		}
		seen[v] = true
	}

	r := c.do(t, "POST", svcsPath, "application/json", nodePortServiceJSON("np-b", port)).want(t, http.StatusUnprocessableEntity)
	st := requireStatus(t, r)
	if st.Reason != "Invalid" || !strings.Contains(st.Message, "spec.ports[0].nodePort") {
		t.Errorf("taken nodePort: reason %q message %q, want Invalid naming spec.ports[0].nodePort", st.Reason, st.Message)
	}
	if _, _, ok := etcdGetKey(t, s, "/registry/core/services/default/np-b"); ok {
		t.Errorf("np-b was stored although its nodePort was taken")
	}

	c.do(t, "DELETE", svcsPath+"/np-a", "", "").want(t, http.StatusOK)
	b := c.do(t, "POST", svcsPath, "application/json", nodePortServiceJSON("np-b", port)).want(t, http.StatusCreated).object(t)
	if v := b.str("spec.ports[0].nodePort"); v != strconv.Itoa(port) {
		t.Errorf("np-b got nodePort %s after np-a released it, want %d", v, port)
	}
}

func testPatches(t *testing.T, c rawAPI) {
	const cm = "/api/v1/namespaces/default/configmaps/patch-cm"
	c.do(t, "POST", "/api/v1/namespaces/default/configmaps", "application/json",
		`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"patch-cm"},"data":{"a":"1","b":"2"}}`).want(t, http.StatusCreated)
	const deploy = "/apis/apps/v1/namespaces/default/deployments/patch-deploy"
	postDeployment(t, c, "patch-deploy", `{"name":"a","image":"busybox"},{"name":"b","image":"nginx"}`)

	cases := []struct {
		name        string
		path        string
		contentType string
		patch       string
		want        map[string]string
	}{
		{
			name: "merge", path: cm, contentType: "application/merge-patch+json",
			patch: `{"metadata":{"labels":{"p":"merge"}},"data":{"a":"10","b":null}}`,
			want:  map[string]string{`metadata.labels["p"]`: "merge", "data.a": "10", "data.b": "<absent>"},
		},
		{
			name: "json", path: cm, contentType: "application/json-patch+json",
			patch: `[{"op":"replace","path":"/data/a","value":"20"},{"op":"add","path":"/data/c","value":"3"},{"op":"remove","path":"/metadata/labels/p"}]`,
			want:  map[string]string{"data.a": "20", "data.c": "3", `metadata.labels["p"]`: "<absent>"},
		},
		{
			name: "strategic keeps the other container", path: deploy, contentType: "application/strategic-merge-patch+json",
			patch: `{"spec":{"template":{"spec":{"containers":[{"name":"b","image":"nginx:1.27"}]}}}}`,
			want: map[string]string{
				"spec.template.spec.containers[0].name":  "a",
				"spec.template.spec.containers[0].image": "busybox",
				"spec.template.spec.containers[1].name":  "b",
				"spec.template.spec.containers[1].image": "nginx:1.27",
				"metadata.generation":                    "2",
			},
		},
		{
			name: "merge replaces the container list", path: deploy, contentType: "application/merge-patch+json",
			patch: `{"spec":{"template":{"spec":{"containers":[{"name":"b","image":"nginx:1.28"}]}}}}`,
			want: map[string]string{
				"spec.template.spec.containers[0].name":                   "b",
				"spec.template.spec.containers[0].image":                  "nginx:1.28",
				"spec.template.spec.containers[0].terminationMessagePath": "/dev/termination-log",
				"spec.template.spec.containers[1]":                        "<absent>",
				"metadata.generation":                                     "3",
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := c.do(t, "GET", tc.path, "", "").want(t, http.StatusOK).object(t)
			out := c.do(t, "PATCH", tc.path, tc.contentType, tc.patch).want(t, http.StatusOK).object(t)
			got := c.do(t, "GET", tc.path, "", "").want(t, http.StatusOK).object(t)
			for _, p := range sortedMapKeys(tc.want) {
				if v := got.str(p); v != tc.want[p] {
					t.Errorf("%s = %s after patch, want %s", p, v, tc.want[p])
				}
			}
			rv := got.str("metadata.resourceVersion")
			if rv == before.str("metadata.resourceVersion") || rv != out.str("metadata.resourceVersion") {
				t.Errorf("resourceVersion before %s, answered %s, read %s: want one new version",
					before.str("metadata.resourceVersion"), out.str("metadata.resourceVersion"), rv)
			}
		})
	}
}

func testYAMLResponse(t *testing.T, c rawAPI) {
	c.do(t, "POST", "/api/v1/namespaces/default/configmaps", "application/json",
		`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"yaml-cm"},"data":{"k":"v"}}`).want(t, http.StatusCreated)
	r := c.do(t, "GET", "/api/v1/namespaces/default/configmaps/yaml-cm", "", "", "Accept", "application/yaml").want(t, http.StatusOK)
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/yaml") {
		t.Errorf("Content-Type = %q, want application/yaml", ct)
	}
	if bytes.HasPrefix(bytes.TrimSpace(r.body), []byte("{")) {
		t.Errorf("the body is JSON, not block YAML:\n%s", r.body)
	}
	var got struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name string `json:"name"`
		} `json:"metadata"`
		Data map[string]string `json:"data"`
	}
	if err := yaml.Unmarshal(r.body, &got); err != nil {
		t.Fatalf("the body is not YAML: %v\n%s", err, r.body)
	}
	if got.APIVersion != "v1" || got.Kind != "ConfigMap" || got.Metadata.Name != "yaml-cm" || got.Data["k"] != "v" {
		t.Errorf("YAML body decodes to %+v", got)
	}
}
