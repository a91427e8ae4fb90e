package apiserver_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"weir.dev/weir/test/cluster"
)

// requireStatus checks that an error httpReply is a Kubernetes Status in JSON
// (the form kubectl prints as "Error from server (Reason): message") and
// returns it.
func requireStatus(t *testing.T, r httpReply) metav1.Status {
	t.Helper()
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("error Content-Type = %q, want application/json", ct)
	}
	var st metav1.Status
	if err := json.Unmarshal(r.body, &st); err != nil {
		t.Fatalf("%s: the body is not a Status: %v", r, err)
	}
	if st.Kind != "Status" || st.APIVersion != "v1" || st.Status != metav1.StatusFailure || int(st.Code) != r.code {
		t.Errorf("Status kind=%q apiVersion=%q status=%q code=%d, want Status v1 Failure %d", st.Kind, st.APIVersion, st.Status, st.Code, r.code)
	}
	if st.Message == "" {
		t.Errorf("Status has no message: %s", r.body)
	}
	return st
}

// revision is etcd's current revision; any write moves it.
func etcdRevision(t *testing.T, s *cluster.Server) int64 {
	t.Helper()
	rev, err := s.Store.Revision(t.Context())
	if err != nil {
		t.Fatalf("read etcd revision: %v", err)
	}
	return rev
}

// waitEtcdQuiet waits until this server leads (its loops have started) and
// etcd's revision holds still, so a moved revision means a request wrote.
func waitEtcdQuiet(t *testing.T, s *cluster.Server) {
	t.Helper()
	cluster.Eventually(t, 30*time.Second, "server leads", func() (bool, error) { return s.Elector.Leading(), nil })
	cluster.Eventually(t, 30*time.Second, "etcd quiet for 500 ms", func() (bool, error) {
		before := etcdRevision(t, s)
		time.Sleep(500 * time.Millisecond)
		if after := etcdRevision(t, s); after != before {
			return false, fmt.Errorf("revision %d → %d, written: %v", before, after, etcdWrittenSince(t, s, before))
		}
		return true, nil
	})
}

type badInputCase struct {
	name        string
	method      string // POST unless set
	path        string
	contentType string // application/json unless set
	body        string
	code        int
	reason      metav1.StatusReason
	// msg are substrings the Status message must hold.
	msg []string
	// field is the path a 422 names, in the message and in details.causes.
	field string
	// keys are etcd keys (objects, claims) that must not exist afterwards.
	keys []string
}

const (
	cmsPath     = "/api/v1/namespaces/default/configmaps"
	svcsPath    = "/api/v1/namespaces/default/services"
	deploysPath = "/apis/apps/v1/namespaces/default/deployments"
)

func cmEtcdKey(ns, name string) string { return "/registry/core/configmaps/" + ns + "/" + name }
func svcEtcdKey(name string) string    { return "/registry/core/services/default/" + name }
func deployEtcdKey(name string) string { return "/registry/apps/deployments/default/" + name }
func nodePortClaim(port int) string    { return fmt.Sprintf("/registry/ranges/servicenodeports/%d", port) }

// TestBadInput sends requests that must fail and checks each gets a clear
// Kubernetes Status and that etcd's revision did not move: nothing was
// written, not even an allocation claim.
func TestBadInput(t *testing.T) {
	s, c := startRaw(t)

	// Objects the rows collide with.
	const heldPort = 30777
	holder := c.do(t, "POST", svcsPath, "application/json", nodePortServiceJSON("holder", heldPort)).want(t, http.StatusCreated).object(t)
	c.do(t, "POST", cmsPath, "application/json", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"exists"},"data":{"a":"1"}}`).want(t, http.StatusCreated)
	movedIP := holder.marshal(t)
	{
		h, _ := decodeJSONObj([]byte(movedIP))
		h.set(t, "spec.clusterIP", "10.96.0.99")
		h.set(t, "spec.clusterIPs", []any{"10.96.0.99"})
		if holder.str("spec.clusterIP") == "10.96.0.99" {
			h.set(t, "spec.clusterIP", "10.96.0.98")
			h.set(t, "spec.clusterIPs", []any{"10.96.0.98"})
		}
		movedIP = h.marshal(t)
	}
	waitEtcdQuiet(t, s)

	cases := []badInputCase{
		{
			name: "malformed JSON", path: cmsPath,
			body: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"bad-json"},"data":{"a":1`,
			code: 400, reason: metav1.StatusReasonBadRequest, msg: []string{"JSON"},
			keys: []string{cmEtcdKey("default", "bad-json")},
		},
		{
			name: "malformed YAML", path: cmsPath, contentType: "application/yaml",
			body: "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bad-yaml\ndata:\n  a: [1, 2\n",
			code: 400, reason: metav1.StatusReasonBadRequest, msg: []string{"YAML"},
			keys: []string{cmEtcdKey("default", "bad-yaml")},
		},
		{
			name: "unknown kind", path: cmsPath, contentType: "application/yaml",
			body: "apiVersion: v1\nkind: Frobnicator\nmetadata:\n  name: frob\n",
			code: 400, reason: metav1.StatusReasonBadRequest, msg: []string{"Frobnicator"},
			keys: []string{cmEtcdKey("default", "frob")},
		},
		{
			name: "unknown version of a known kind", path: deploysPath,
			body: fmt.Sprintf(strings.Replace(deploymentJSONFmt, "apps/v1", "apps/v9", 1), "v9-deploy", "v9", "v9", `{"name":"web","image":"nginx"}`),
			code: 400, reason: metav1.StatusReasonBadRequest, msg: []string{"apps/v9"},
			keys: []string{deployEtcdKey("v9-deploy")},
		},
		{
			name: "missing kind", path: cmsPath,
			body: `{"apiVersion":"v1","metadata":{"name":"no-kind"}}`,
			code: 400, reason: metav1.StatusReasonBadRequest, msg: []string{"Kind"},
			keys: []string{cmEtcdKey("default", "no-kind")},
		},
		{
			name: "body kind differs from the URL", path: "/api/v1/namespaces/default/pods",
			body: `{"apiVersion":"v1","kind":"Service","metadata":{"name":"mismatch"},"spec":{"ports":[{"port":80}]}}`,
			code: 400, reason: metav1.StatusReasonBadRequest, msg: []string{"Service", "Pod"},
			keys: []string{"/registry/core/pods/default/mismatch", svcEtcdKey("mismatch")},
		},
		{
			name: "body namespace differs from the URL", path: cmsPath,
			body: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"other-ns","namespace":"kube-system"}}`,
			code: 400, reason: metav1.StatusReasonBadRequest, msg: []string{"namespace"},
			keys: []string{cmEtcdKey("default", "other-ns"), cmEtcdKey("kube-system", "other-ns")},
		},
		{
			name: "empty body", path: cmsPath, body: "",
			code: 400, reason: metav1.StatusReasonBadRequest, msg: []string{"empty"},
		},
		{
			name: "a list instead of one object", path: cmsPath,
			body: `[{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"in-list"}}]`,
			code: 400, reason: metav1.StatusReasonBadRequest,
			keys: []string{cmEtcdKey("default", "in-list")},
		},
		{
			name: "unknown field with fieldValidation=Strict", path: cmsPath + "?fieldValidation=Strict",
			body: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"strict"},"datta":{"a":"1"}}`,
			code: 400, reason: metav1.StatusReasonBadRequest, msg: []string{"datta"},
			keys: []string{cmEtcdKey("default", "strict")},
		},
		{
			name: "body over the size limit", path: cmsPath,
			body: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"huge"},"data":{"a":"` + strings.Repeat("x", 4<<20) + `"}}`,
			code: 413, reason: metav1.StatusReasonRequestEntityTooLarge,
			keys: []string{cmEtcdKey("default", "huge")},
		},
		{
			name: "missing metadata.name", path: cmsPath,
			body: `{"apiVersion":"v1","kind":"ConfigMap","data":{"a":"1"}}`,
			code: 422, reason: metav1.StatusReasonInvalid, field: "metadata.name",
			keys: []string{cmEtcdKey("default", "")},
		},
		{
			name: "invalid name", path: cmsPath,
			body: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"Bad_Name"}}`,
			code: 422, reason: metav1.StatusReasonInvalid, field: "metadata.name", msg: []string{"Bad_Name"},
			keys: []string{cmEtcdKey("default", "Bad_Name")},
		},
		{
			name: "invalid label value", path: cmsPath,
			body: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"bad-label","labels":{"app":"-bad-"}}}`,
			code: 422, reason: metav1.StatusReasonInvalid, field: "metadata.labels", msg: []string{"-bad-"},
			keys: []string{cmEtcdKey("default", "bad-label")},
		},
		{
			name: "pod without containers", path: "/api/v1/namespaces/default/pods",
			body: `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"empty-pod"},"spec":{"containers":[]}}`,
			code: 422, reason: metav1.StatusReasonInvalid, field: "spec.containers",
			keys: []string{"/registry/core/pods/default/empty-pod"},
		},
		{
			name: "service port 70000", path: svcsPath,
			body: `{"apiVersion":"v1","kind":"Service","metadata":{"name":"bad-port"},"spec":{"selector":{"app":"x"},"ports":[{"port":70000}]}}`,
			code: 422, reason: metav1.StatusReasonInvalid, field: "spec.ports[0].port", msg: []string{"70000"},
			keys: []string{svcEtcdKey("bad-port")},
		},
		{
			name: "nodePort outside 30000-32767", path: svcsPath,
			body: nodePortServiceJSON("bad-nodeport", 40000),
			code: 422, reason: metav1.StatusReasonInvalid, field: "spec.ports[0].nodePort", msg: []string{"40000", "30000-32767"},
			keys: []string{svcEtcdKey("bad-nodeport"), nodePortClaim(40000)},
		},
		{
			name: "nodePort another Service holds", path: svcsPath,
			body: nodePortServiceJSON("steal", heldPort),
			code: 422, reason: metav1.StatusReasonInvalid, field: "spec.ports[0].nodePort", msg: []string{"already allocated"},
			keys: []string{svcEtcdKey("steal")},
		},
		{
			name: "clusterIP outside the service CIDR", path: svcsPath,
			body: `{"apiVersion":"v1","kind":"Service","metadata":{"name":"far-ip"},"spec":{"clusterIP":"192.168.7.7","ports":[{"port":80}]}}`,
			code: 422, reason: metav1.StatusReasonInvalid, field: "spec.clusterIP", msg: []string{"192.168.7.7"},
			keys: []string{svcEtcdKey("far-ip"), "/registry/ranges/serviceips/192.168.7.7"},
		},
		{
			name: "node podCIDR outside the cluster CIDR", path: "/api/v1/nodes",
			body: `{"apiVersion":"v1","kind":"Node","metadata":{"name":"far-node"},"spec":{"podCIDR":"192.168.0.0/24"}}`,
			code: 422, reason: metav1.StatusReasonInvalid, field: "spec.podCIDR",
			keys: []string{"/registry/core/nodes/far-node", "/registry/ranges/podcidrs/192.168.0.0-24"},
		},
		{
			name: "deployment selector does not match template labels", path: deploysPath,
			body: `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"bad-selector"},"spec":{
				"selector":{"matchLabels":{"app":"a"}},
				"template":{"metadata":{"labels":{"app":"b"}},"spec":{"containers":[{"name":"web","image":"nginx"}]}}}}`,
			code: 422, reason: metav1.StatusReasonInvalid, field: "spec.template.metadata.labels", msg: []string{"selector"},
			keys: []string{deployEtcdKey("bad-selector")},
		},
		{
			name: "deployment replicas -1", path: deploysPath,
			body: `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"neg-replicas"},"spec":{"replicas":-1,
				"selector":{"matchLabels":{"app":"n"}},
				"template":{"metadata":{"labels":{"app":"n"}},"spec":{"containers":[{"name":"web","image":"nginx"}]}}}}`,
			code: 422, reason: metav1.StatusReasonInvalid, field: "spec.replicas",
			keys: []string{deployEtcdKey("neg-replicas")},
		},
		{
			name: "namespace that does not exist", path: "/api/v1/namespaces/nope/configmaps",
			body: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"in-nope"}}`,
			code: 404, reason: metav1.StatusReasonNotFound, msg: []string{`namespaces "nope" not found`},
			keys: []string{cmEtcdKey("nope", "in-nope"), "/registry/core/namespaces/nope"},
		},
		{
			name: "name already taken", path: cmsPath,
			body: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"exists"},"data":{"a":"2"}}`,
			code: 409, reason: metav1.StatusReasonAlreadyExists, msg: []string{`configmaps "exists" already exists`},
		},
		{
			name: "update with a stale resourceVersion", method: "PUT", path: cmsPath + "/exists",
			body: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"exists","resourceVersion":"1"},"data":{"a":"3"}}`,
			code: 409, reason: metav1.StatusReasonConflict, msg: []string{"modified"},
		},
		{
			name: "update of an immutable clusterIP", method: "PUT", path: svcsPath + "/holder",
			body: movedIP,
			code: 422, reason: metav1.StatusReasonInvalid, field: "spec.clusterIP",
		},
		{
			name: "patch with a plain JSON Content-Type", method: "PATCH", path: cmsPath + "/exists",
			body: `{"data":{"a":"4"}}`,
			code: 415, reason: metav1.StatusReasonUnsupportedMediaType,
		},
		{
			name: "malformed merge patch", method: "PATCH", path: cmsPath + "/exists", contentType: "application/merge-patch+json",
			body: `{"data":`,
			code: 400, reason: metav1.StatusReasonBadRequest,
		},
		{
			name: "patch to an invalid label", method: "PATCH", path: cmsPath + "/exists", contentType: "application/merge-patch+json",
			body: `{"metadata":{"labels":{"app":"-bad-"}}}`,
			code: 422, reason: metav1.StatusReasonInvalid, field: "metadata.labels",
		},
		{
			name: "unknown resource", path: "/api/v1/namespaces/default/frobnicators",
			body: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"frob"}}`,
			code: 404, reason: metav1.StatusReasonNotFound, msg: []string{"the server could not find the requested resource"},
			keys: []string{cmEtcdKey("default", "frob"), "/registry/core/frobnicators/default/frob"},
		},
		{
			name: "unknown API group", method: "GET", path: "/apis/frob.example.com/v1/namespaces/default/things/x",
			code: 404, reason: metav1.StatusReasonNotFound, msg: []string{"the server could not find the requested resource"},
		},
		{
			name: "get a missing deployment", method: "GET", path: deploysPath + "/x",
			code: 404, reason: metav1.StatusReasonNotFound, msg: []string{`deployments.apps "x" not found`},
		},
		{
			name: "delete a missing configmap", method: "DELETE", path: cmsPath + "/nope",
			code: 404, reason: metav1.StatusReasonNotFound, msg: []string{`configmaps "nope" not found`},
		},
	}
	if len(cases) == 0 {
		t.Fatal("no bad inputs")
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			method, ct := tc.method, tc.contentType
			if method == "" {
				method = "POST"
			}
			if ct == "" && tc.body != "" {
				ct = "application/json"
			}
			before := etcdRevision(t, s)
			r := c.do(t, method, tc.path, ct, tc.body)
			after := etcdRevision(t, s)

			if after != before {
				t.Errorf("etcd revision moved %d → %d: the request wrote %v", before, after, etcdWrittenSince(t, s, before))
			}
			for _, k := range tc.keys {
				if _, _, ok := etcdGetKey(t, s, k); ok {
					t.Errorf("etcd holds %s", k)
				}
			}

			if r.code != tc.code {
				t.Errorf("want HTTP %d, got %s", tc.code, r)
			}
			if r.code < 400 {
				return
			}
			st := requireStatus(t, r)
			if st.Reason != tc.reason {
				t.Errorf("reason %q, want %q (message %q)", st.Reason, tc.reason, st.Message)
			}
			want := tc.msg
			if tc.field != "" {
				want = append([]string{tc.field}, want...)
			}
			for _, m := range want {
				if !strings.Contains(st.Message, m) {
					t.Errorf("message %q does not mention %q", st.Message, m)
				}
			}
			if tc.field != "" {
				var fields []string
				if st.Details != nil {
					for _, cause := range st.Details.Causes {
						fields = append(fields, cause.Field)
					}
				}
				if !slices.ContainsFunc(fields, func(f string) bool { return strings.HasPrefix(f, tc.field) }) {
					t.Errorf("details.causes fields %q do not name %s", fields, tc.field)
				}
			}
		})
	}

	// What kubectl prints comes from client-go's error.
	t.Run("client-go message for a missing deployment", func(t *testing.T) {
		_, err := s.Client(t).AppsV1().Deployments("default").Get(t.Context(), "x", metav1.GetOptions{})
		if !apierrors.IsNotFound(err) {
			t.Fatalf("get missing deployment: %v, want NotFound", err)
		}
		if got, want := err.Error(), `deployments.apps "x" not found`; got != want {
			t.Errorf("error %q, want %q", got, want)
		}
	})
}
