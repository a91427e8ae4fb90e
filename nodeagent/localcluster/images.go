package localcluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"

	"weir.dev/weir/nodeagent/containerd"
	"weir.dev/weir/nodeagent/images"
)

// NodeNamespace is the containerd namespace of node name's images and
// containers (the runtime's default).
func NodeNamespace(node string) string { return "weir-" + node }

// Images is the image store of a local cluster: the containerd `weir up`
// started under its data dir and the namespaces of its nodes. Its methods
// are safe for concurrent use; Close releases the connection.
type Images struct {
	client *client.Client
	nodes  []string
}

// OpenImages connects to the containerd of the cluster at dataDir. only,
// if not empty, narrows the nodes acted on; each must be a node of the
// cluster.
func OpenImages(dataDir string, only []string) (*Images, error) {
	b, err := os.ReadFile(layoutFile(dataDir))
	if err != nil {
		return nil, fmt.Errorf("no cluster in %s (run weir up first): %w", dataDir, err)
	}
	var l layout
	if err := json.Unmarshal(b, &l); err != nil || len(l.Nodes) == 0 {
		return nil, fmt.Errorf("read %s: no node list (%v)", layoutFile(dataDir), err)
	}
	nodes := l.Nodes
	if len(only) > 0 {
		nodes = nil
		for i, n := range only {
			if !slices.Contains(l.Nodes, n) {
				return nil, fmt.Errorf("--node[%d] %q: not a node of the cluster in %s (nodes: %s)", i, n, dataDir, strings.Join(l.Nodes, ", "))
			}
			if !slices.Contains(nodes, n) {
				nodes = append(nodes, n)
			}
		}
	}
	sock := containerd.SocketPath(filepath.Join(dataDir, "containerd"))
	if _, err := os.Stat(sock); err != nil {
		return nil, fmt.Errorf("the cluster's containerd is not running (no %s): %w", sock, err)
	}
	c, err := client.New(sock)
	if err != nil {
		return nil, fmt.Errorf("connect to the cluster's containerd: %w", err)
	}
	return &Images{client: c, nodes: nodes}, nil
}

// Close closes the connection.
func (s *Images) Close() error { return s.client.Close() }

// Nodes are the nodes acted on.
func (s *Images) Nodes() []string { return slices.Clone(s.nodes) }

// Import loads the image tarball at path (an OCI layout or a `docker
// save` archive) into every node and returns the names imported on each.
// It reads the file once per node; a file that is not an image tarball
// fails on the first node, before any image record is written.
func (s *Images) Import(ctx context.Context, path string) (map[string][]string, error) {
	out := map[string][]string{}
	for _, node := range s.nodes {
		f, err := os.Open(path)
		if err != nil {
			return out, fmt.Errorf("import %s: %w", path, err)
		}
		names, err := images.Import(ctx, s.client, NodeNamespace(node), f)
		f.Close()
		if err != nil {
			return out, fmt.Errorf("import %s into node %s: %w", path, node, err)
		}
		if len(names) == 0 {
			return out, fmt.Errorf("import %s: the tarball names no image (an OCI layout needs an io.containerd.image.name or org.opencontainers.image.ref.name annotation)", path)
		}
		out[node] = names
	}
	return out, nil
}

// Image is one image on one node.
type Image struct {
	Node, Name string
	Digest     string
	Size       int64
	// Imported is true for an image from a tarball (weir image import,
	// the agent's test images), false for one pulled from a registry.
	Imported bool
}

// List returns the images of every node, by node then name.
func (s *Images) List(ctx context.Context) ([]Image, error) {
	var out []Image
	for _, node := range s.nodes {
		nctx := namespaces.WithNamespace(ctx, NodeNamespace(node))
		imgs, err := s.client.ListImages(nctx)
		if err != nil {
			return nil, fmt.Errorf("list images of node %s: %w", node, err)
		}
		for _, img := range imgs {
			size, err := img.Size(nctx)
			if err != nil {
				size = -1 // content missing for this platform: shown as unknown
			}
			out = append(out, Image{Node: node, Name: img.Name(), Digest: img.Target().Digest.String(), Size: size,
				Imported: images.Imported(img)})
		}
	}
	slices.SortFunc(out, func(a, b Image) int {
		if c := strings.Compare(a.Node, b.Node); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out, nil
}

// WriteTestImages writes the test images as OCI tarballs into dir —
// busybox.tar (weir.local/busybox:latest, docker.io/library/busybox:latest)
// and, when echoBinary is set, echo.tar (weir.local/echo:latest, :v1,
// :v2) — built as the agents build the images they import, and returns
// the files written.
func WriteTestImages(dir, busybox, echoBinary string) ([]string, error) {
	imgs := map[string]func() (images.Image, error){
		"busybox.tar": func() (images.Image, error) { return images.Busybox(busybox) },
	}
	if echoBinary != "" {
		imgs["echo.tar"] = func() (images.Image, error) { return images.Echo(echoBinary) }
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var written []string
	for _, name := range []string{"busybox.tar", "echo.tar"} {
		build, ok := imgs[name]
		if !ok {
			continue
		}
		img, err := build()
		if err != nil {
			return written, err
		}
		p := filepath.Join(dir, name)
		if err := writeImageFile(p, img); err != nil {
			return written, err
		}
		written = append(written, p)
	}
	return written, nil
}

// writeImageFile writes img to path through a temporary file, so a
// failure leaves no partial tarball.
func writeImageFile(path string, img images.Image) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	_, werr := images.Write(f, img)
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		os.Remove(f.Name())
		return err
	}
	return os.Rename(f.Name(), path)
}
