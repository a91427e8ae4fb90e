package apiserver_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"weir.dev/weir/test/cluster"
)

const tableAccept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"

func getWithAccept(t *testing.T, s *cluster.Server, path, accept string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, s.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+s.AdminToken)
	req.Header.Set("Accept", accept)
	resp, err := s.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func columnNames(t *metav1.Table, priority int32) []string {
	var out []string
	for _, c := range t.ColumnDefinitions {
		if c.Priority == priority {
			out = append(out, c.Name)
		}
	}
	return out
}

// TestTableResponses: the Table kubectl asks for, for lists, gets and
// every includeObject policy, with kubectl's pod columns.
func TestTableResponses(t *testing.T) {
	s := startAPI(t)
	c := s.Client(t)
	ctx := t.Context()
	if _, err := c.CoreV1().Pods("default").Create(ctx, pod("web-1", map[string]string{"app": "web"}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, path, accept, query string
		wantKind, wantAPIVersion  string
		wantRowObject             string // kind of rows[0].object; "" for none
	}{
		{name: "list default metadata", path: "/api/v1/namespaces/default/pods", accept: tableAccept,
			wantKind: "Table", wantAPIVersion: "meta.k8s.io/v1", wantRowObject: "PartialObjectMetadata"},
		{name: "list full objects", path: "/api/v1/namespaces/default/pods", query: "?includeObject=Object", accept: tableAccept,
			wantKind: "Table", wantAPIVersion: "meta.k8s.io/v1", wantRowObject: "Pod"},
		{name: "list no objects", path: "/api/v1/pods", query: "?includeObject=None", accept: tableAccept,
			wantKind: "Table", wantAPIVersion: "meta.k8s.io/v1"},
		{name: "get one", path: "/api/v1/namespaces/default/pods/web-1", accept: tableAccept,
			wantKind: "Table", wantAPIVersion: "meta.k8s.io/v1", wantRowObject: "PartialObjectMetadata"},
		{name: "v1beta1 only", path: "/api/v1/namespaces/default/pods", accept: "application/json;as=Table;v=v1beta1;g=meta.k8s.io",
			wantKind: "Table", wantAPIVersion: "meta.k8s.io/v1beta1", wantRowObject: "PartialObjectMetadata"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body := getWithAccept(t, s, tc.path+tc.query, tc.accept)
			if code != http.StatusOK {
				t.Fatalf("status %d: %s", code, body)
			}
			var tb metav1.Table
			if err := json.Unmarshal(body, &tb); err != nil {
				t.Fatal(err)
			}
			if tb.Kind != tc.wantKind || tb.APIVersion != tc.wantAPIVersion {
				t.Fatalf("got %s %s, want %s %s", tb.APIVersion, tb.Kind, tc.wantAPIVersion, tc.wantKind)
			}
			if diff := cmp.Diff([]string{"Name", "Ready", "Status", "Restarts", "Age"}, columnNames(&tb, 0)); diff != "" {
				t.Errorf("default columns (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{"IP", "Node", "Nominated Node", "Readiness Gates"}, columnNames(&tb, 1)); diff != "" {
				t.Errorf("wide columns (-want +got):\n%s", diff)
			}
			if len(tb.Rows) != 1 {
				t.Fatalf("rows: %d, want 1", len(tb.Rows))
			}
			row := tb.Rows[0]
			if row.Cells[0] != "web-1" || row.Cells[1] != "0/1" || row.Cells[2] != "Pending" {
				t.Errorf("cells %v", row.Cells)
			}
			var tm metav1.TypeMeta
			if len(row.Object.Raw) > 0 {
				if err := json.Unmarshal(row.Object.Raw, &tm); err != nil {
					t.Fatal(err)
				}
			}
			if tm.Kind != tc.wantRowObject {
				t.Errorf("row object kind %q, want %q", tm.Kind, tc.wantRowObject)
			}
			if tc.wantRowObject != "" {
				var pm metav1.PartialObjectMetadata
				if err := json.Unmarshal(row.Object.Raw, &pm); err != nil {
					t.Fatal(err)
				}
				if pm.Labels["app"] != "web" || pm.Namespace != "default" {
					t.Errorf("row object metadata %+v", pm.ObjectMeta)
				}
			}
		})
	}
	t.Run("plain json unchanged", func(t *testing.T) {
		code, body := getWithAccept(t, s, "/api/v1/namespaces/default/pods", "application/json")
		var l corev1.PodList
		if err := json.Unmarshal(body, &l); code != http.StatusOK || err != nil || l.Kind != "PodList" || len(l.Items) != 1 {
			t.Fatalf("status %d kind %q items %d err %v", code, l.Kind, len(l.Items), err)
		}
	})
	t.Run("partial object metadata list", func(t *testing.T) {
		code, body := getWithAccept(t, s, "/api/v1/namespaces/default/pods", "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io")
		var l metav1.PartialObjectMetadataList
		if err := json.Unmarshal(body, &l); code != http.StatusOK || err != nil || l.Kind != "PartialObjectMetadataList" || len(l.Items) != 1 || l.Items[0].Name != "web-1" {
			t.Fatalf("status %d: %s", code, body)
		}
	})
	t.Run("bad includeObject", func(t *testing.T) {
		code, _ := getWithAccept(t, s, "/api/v1/namespaces/default/pods?includeObject=Everything", tableAccept)
		if code != http.StatusBadRequest {
			t.Fatalf("status %d, want 400", code)
		}
	})
	t.Run("namespace columns", func(t *testing.T) {
		_, body := getWithAccept(t, s, "/api/v1/namespaces", tableAccept)
		var tb metav1.Table
		if err := json.Unmarshal(body, &tb); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"Name", "Status", "Age"}, columnNames(&tb, 0)); diff != "" {
			t.Errorf("namespace columns (-want +got):\n%s", diff)
		}
	})
}

// TestTableWatch: a watch asked for as Table sends one-row Tables.
func TestTableWatch(t *testing.T) {
	s := startAPI(t)
	c := s.Client(t)
	ctx := t.Context()
	list, err := c.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet,
		s.URL+"/api/v1/namespaces/default/pods?watch=true&resourceVersion="+list.ResourceVersion, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+s.AdminToken)
	req.Header.Set("Accept", tableAccept)
	resp, err := s.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	go func() {
		time.Sleep(100 * time.Millisecond)
		_, _ = c.CoreV1().Pods("default").Create(ctx, pod("watched", nil), metav1.CreateOptions{})
	}()
	lines := bufio.NewScanner(resp.Body)
	timer := time.AfterFunc(20*time.Second, func() { resp.Body.Close() })
	defer timer.Stop()
	if !lines.Scan() {
		t.Fatalf("no watch event: %v", lines.Err())
	}
	var ev struct {
		Type   string       `json:"type"`
		Object metav1.Table `json:"object"`
	}
	if err := json.Unmarshal(lines.Bytes(), &ev); err != nil {
		t.Fatalf("decode %s: %v", lines.Bytes(), err)
	}
	if ev.Type != "ADDED" || ev.Object.Kind != "Table" || len(ev.Object.Rows) != 1 || ev.Object.Rows[0].Cells[0] != "watched" {
		t.Fatalf("event %s", strings.TrimSpace(lines.Text()))
	}
	if len(ev.Object.ColumnDefinitions) == 0 {
		t.Errorf("the first watch table has no column definitions")
	}
}
