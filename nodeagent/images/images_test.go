package images

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestWriteReproducibleLayout(t *testing.T) {
	img := Image{
		Names: []string{"weir.local/x:v1", "weir.local/x:latest"},
		Files: []File{
			{Path: "b/file", Mode: 0o644, Data: []byte("hi")},
			{Path: "a/link", Mode: fs.ModeSymlink | 0o777, Target: "../b/file"},
			{Path: "tmp", Mode: fs.ModeDir | fs.ModeSticky | 0o777},
		},
		Config: ocispec.ImageConfig{Entrypoint: []string{"/x"}},
	}
	var b1, b2 bytes.Buffer
	d1, err := Write(&b1, img)
	if err != nil {
		t.Fatal(err)
	}
	d2, err := Write(&b2, img)
	if err != nil {
		t.Fatal(err)
	}
	if d1 != d2 || !bytes.Equal(b1.Bytes(), b2.Bytes()) {
		t.Errorf("two writes differ: %s vs %s", d1, d2)
	}
	entries := map[string][]byte{}
	tr := tar.NewReader(&b1)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		entries[h.Name] = b
	}
	for _, want := range []string{"oci-layout", "index.json", "blobs/sha256/" + d1.Encoded()} {
		if _, ok := entries[want]; !ok {
			t.Errorf("tarball lacks %s", want)
		}
	}
	var idx ocispec.Index
	if err := json.Unmarshal(entries["index.json"], &idx); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range idx.Manifests {
		names = append(names, m.Annotations[annotationImageName])
		if m.Digest != d1 {
			t.Errorf("index names %s, want manifest %s", m.Digest, d1)
		}
	}
	if len(names) != 2 || names[0] != "weir.local/x:v1" || names[1] != "weir.local/x:latest" {
		t.Errorf("image names %v", names)
	}
	if idx.Manifests[0].Annotations[ocispec.AnnotationRefName] != "v1" {
		t.Errorf("ref name %q, want v1", idx.Manifests[0].Annotations[ocispec.AnnotationRefName])
	}
}

func TestLayerOrderAndModes(t *testing.T) {
	layer, _, err := layerTar([]File{
		{Path: "z/y/file", Mode: 0o600, Data: []byte("x")},
		{Path: "tmp", Mode: fs.ModeDir | fs.ModeSticky | 0o777},
	})
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(bytes.NewReader(layer))
	var got []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, h.Name)
		if h.Name == "tmp/" && h.Mode != 0o1777 {
			t.Errorf("tmp mode %o, want 1777", h.Mode)
		}
	}
	want := []string{"tmp/", "z/", "z/y/", "z/y/file"}
	if len(got) != len(want) {
		t.Fatalf("entries %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("entries %v, want %v", got, want)
		}
	}
	if _, _, err := layerTar([]File{{Path: "a"}, {Path: "/a"}}); err == nil {
		t.Error("duplicate path: want an error")
	}
}

func TestBusyboxAndStaticCheck(t *testing.T) {
	img, err := Busybox("")
	if err != nil {
		t.Fatalf("busybox image (needs Debian's busybox-static; run make deps): %v", err)
	}
	have := map[string]bool{}
	for _, f := range img.Files {
		have[f.Path] = true
	}
	for _, p := range []string{"bin/busybox", "bin/sh", "bin/sleep", "bin/nc", "bin/httpd", "bin/wget", "bin/ping", "etc/passwd", "tmp"} {
		if !have[p] {
			t.Errorf("busybox image lacks %s", p)
		}
	}
	sh, err := os.ReadFile("/bin/ls") // coreutils: dynamically linked
	if err != nil {
		t.Fatal(err)
	}
	if isStatic(sh) {
		t.Error("/bin/ls reported static")
	}
	if _, err := StaticBinary([]string{"x"}, "/bin/ls", nil); err == nil {
		t.Error("StaticBinary of a dynamic executable: want an error")
	}
	img2, err := StaticBinary([]string{"weir.local/bb:latest"}, "/bin/busybox", nil, "8080/tcp")
	if err != nil {
		t.Fatal(err)
	}
	if img2.Config.Entrypoint[0] != "/busybox" {
		t.Errorf("entrypoint %v, want [/busybox]", img2.Config.Entrypoint)
	}
}
