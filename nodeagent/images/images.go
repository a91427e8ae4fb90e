package images

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Names of the busybox image.
const (
	BusyboxName       = "weir.local/busybox:latest"
	DockerBusyboxName = "docker.io/library/busybox:latest"
)

// Snapshotter is the containerd snapshotter images are unpacked into.
const Snapshotter = "overlayfs"

// DefaultPath is the PATH images get unless they say otherwise (Docker's).
const DefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// annotationImageName is where containerd's importer takes an image's name.
const annotationImageName = "io.containerd.image.name"

// File is one entry of an image's single layer.
type File struct {
	// Path is relative to the root ("bin/sh").
	Path string
	// Mode holds the permission bits and the type: fs.ModeDir for a
	// directory, fs.ModeSymlink for a symlink, neither for a regular file.
	Mode fs.FileMode
	// Data is a regular file's content.
	Data []byte
	// Target is a symlink's target.
	Target   string
	UID, GID int
}

// Image is a one-layer image.
type Image struct {
	// Names are the references it is imported under
	// ("weir.local/busybox:latest"); at least one.
	Names  []string
	Files  []File
	Config ocispec.ImageConfig
}

// Write writes img as an OCI image layout tarball that containerd's
// importer (and `ctr images import`) accepts, and returns the manifest's
// digest. Output depends only on img.
func Write(w io.Writer, img Image) (digest.Digest, error) {
	if len(img.Names) == 0 {
		return "", errors.New("images: image without a name")
	}
	layer, diffID, err := layerTar(img.Files)
	if err != nil {
		return "", err
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	if _, err := zw.Write(layer); err != nil {
		return "", err
	}
	if err := zw.Close(); err != nil {
		return "", err
	}
	layerBlob := gz.Bytes()

	epoch := time.Unix(0, 0).UTC()
	cfg := ocispec.Image{
		Created:  &epoch,
		Platform: ocispec.Platform{Architecture: runtime.GOARCH, OS: "linux"},
		Config:   img.Config,
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{diffID}},
	}
	cfgBlob, err := json.Marshal(cfg)
	if err != nil {
		return "", err
	}
	manifest := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    descriptor(ocispec.MediaTypeImageConfig, cfgBlob),
		Layers:    []ocispec.Descriptor{descriptor(ocispec.MediaTypeImageLayerGzip, layerBlob)},
	}
	manBlob, err := json.Marshal(manifest)
	if err != nil {
		return "", err
	}
	manDesc := descriptor(ocispec.MediaTypeImageManifest, manBlob)
	manDesc.Platform = &ocispec.Platform{Architecture: runtime.GOARCH, OS: "linux"}
	index := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex}
	for _, name := range img.Names {
		d := manDesc
		d.Annotations = map[string]string{annotationImageName: name, ocispec.AnnotationRefName: refName(name)}
		index.Manifests = append(index.Manifests, d)
	}
	idxBlob, err := json.Marshal(index)
	if err != nil {
		return "", err
	}

	tw := tar.NewWriter(w)
	add := func(name string, b []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), ModTime: epoch, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := tw.Write(b)
		return err
	}
	for _, dir := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Name: dir, Mode: 0o755, ModTime: epoch, Typeflag: tar.TypeDir, Format: tar.FormatPAX}); err != nil {
			return "", err
		}
	}
	for _, e := range []struct {
		name string
		b    []byte
	}{
		{ocispec.ImageLayoutFile, []byte(`{"imageLayoutVersion":"` + ocispec.ImageLayoutVersion + `"}`)},
		{"index.json", idxBlob},
		{blobPath(layerBlob), layerBlob},
		{blobPath(cfgBlob), cfgBlob},
		{blobPath(manBlob), manBlob},
	} {
		if err := add(e.name, e.b); err != nil {
			return "", fmt.Errorf("images: write %s: %w", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	return manDesc.Digest, nil
}

func descriptor(mediaType string, b []byte) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(b), Size: int64(len(b))}
}

func blobPath(b []byte) string { return "blobs/sha256/" + digest.FromBytes(b).Encoded() }

// refName is the tag part of a reference, as org.opencontainers.image.ref.name wants.
func refName(name string) string {
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		return name[i+1:]
	}
	return "latest"
}

// layerTar renders files as an uncompressed tar, parents before children,
// in sorted order, and returns it with its digest (the diff id).
func layerTar(files []File) ([]byte, digest.Digest, error) {
	byPath := map[string]File{}
	for _, f := range files {
		p := strings.Trim(path.Clean("/"+f.Path), "/")
		if p == "" {
			continue
		}
		f.Path = p
		if _, dup := byPath[p]; dup {
			return nil, "", fmt.Errorf("images: %s listed twice", p)
		}
		byPath[p] = f
		// Implied parent directories.
		for d := path.Dir(p); d != "." && d != "/"; d = path.Dir(d) {
			if _, ok := byPath[d]; !ok {
				byPath[d] = File{Path: d, Mode: fs.ModeDir | 0o755}
			}
		}
	}
	paths := make([]string, 0, len(byPath))
	for p := range byPath {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	epoch := time.Unix(0, 0).UTC()
	for _, p := range paths {
		f := byPath[p]
		h := &tar.Header{Name: p, Mode: int64(f.Mode.Perm() | stickyBits(f.Mode)),
			Uid: f.UID, Gid: f.GID, ModTime: epoch, Format: tar.FormatPAX}
		switch {
		case f.Mode.IsDir():
			h.Typeflag, h.Name = tar.TypeDir, p+"/"
		case f.Mode&fs.ModeSymlink != 0:
			h.Typeflag, h.Linkname = tar.TypeSymlink, f.Target
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.Data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, "", fmt.Errorf("images: layer %s: %w", p, err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(f.Data); err != nil {
				return nil, "", fmt.Errorf("images: layer %s: %w", p, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, "", err
	}
	return buf.Bytes(), digest.FromBytes(buf.Bytes()), nil
}

// stickyBits maps Go's mode bits for sticky/setuid/setgid to tar's.
func stickyBits(m fs.FileMode) fs.FileMode {
	var out fs.FileMode
	if m&fs.ModeSticky != 0 {
		out |= 0o1000
	}
	if m&fs.ModeSetgid != 0 {
		out |= 0o2000
	}
	if m&fs.ModeSetuid != 0 {
		out |= 0o4000
	}
	return out
}

// baseFiles is the skeleton every image gets: the usual directories, a
// world-writable /tmp, root and nobody in passwd and group, and empty
// files where the runtime bind-mounts hosts, hostname and resolv.conf.
func baseFiles() []File {
	dir := func(p string, mode fs.FileMode) File { return File{Path: p, Mode: fs.ModeDir | mode} }
	return []File{
		dir("bin", 0o755), dir("dev", 0o755), dir("etc", 0o755), dir("proc", 0o755),
		dir("root", 0o700), dir("run", 0o755), dir("sys", 0o755), dir("usr/bin", 0o755),
		dir("var", 0o755), dir("tmp", fs.ModeSticky|0o777), dir("var/tmp", fs.ModeSticky|0o777),
		{Path: "etc/passwd", Mode: 0o644, Data: []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")},
		{Path: "etc/group", Mode: 0o644, Data: []byte("root:x:0:\nnobody:x:65534:\n")},
		{Path: "etc/hosts", Mode: 0o644},
		{Path: "etc/hostname", Mode: 0o644},
		{Path: "etc/resolv.conf", Mode: 0o644},
	}
}

// Busybox returns the busybox image built from the static busybox at
// busyboxPath (default /bin/busybox): /bin/busybox, a /bin symlink per
// applet it lists, /usr/bin/env, and a /www/index.html for httpd.
func Busybox(busyboxPath string) (Image, error) {
	if busyboxPath == "" {
		busyboxPath = "/bin/busybox"
	}
	bin, err := os.ReadFile(busyboxPath)
	if err != nil {
		return Image{}, fmt.Errorf("images: read busybox: %w", err)
	}
	if !isStatic(bin) {
		return Image{}, fmt.Errorf("images: %s is dynamically linked; install busybox-static", busyboxPath)
	}
	out, err := exec.Command(busyboxPath, "--list").Output()
	if err != nil {
		return Image{}, fmt.Errorf("images: busybox --list: %w", err)
	}
	files := append(baseFiles(),
		File{Path: "bin/busybox", Mode: 0o755, Data: bin},
		File{Path: "usr/bin/env", Mode: fs.ModeSymlink | 0o777, Target: "/bin/busybox"},
		File{Path: "www/index.html", Mode: 0o644, Data: []byte("hello from weir.local/busybox\n")},
	)
	for _, applet := range strings.Fields(string(out)) {
		if applet == "busybox" || strings.Contains(applet, "/") {
			continue
		}
		files = append(files, File{Path: "bin/" + applet, Mode: fs.ModeSymlink | 0o777, Target: "busybox"})
	}
	return Image{
		Names: []string{BusyboxName, DockerBusyboxName},
		Files: files,
		Config: ocispec.ImageConfig{
			Env:        []string{DefaultPath},
			Cmd:        []string{"sh"},
			WorkingDir: "/",
		},
	}, nil
}

// StaticBinary returns an image named names that holds the static
// executable at binPath as /<name of binPath> — e.g. /weir-echo — with
// entrypoint entrypoint (default: that path) and the exposed TCP/UDP
// ports given as "8080/tcp". It is meant for bin/weir-echo as
// weir.local/echo:latest (and :v1, :v2).
func StaticBinary(names []string, binPath string, entrypoint []string, exposed ...string) (Image, error) {
	bin, err := os.ReadFile(binPath)
	if err != nil {
		return Image{}, fmt.Errorf("images: read %s: %w", binPath, err)
	}
	if !isStatic(bin) {
		return Image{}, fmt.Errorf("images: %s is not a static executable (build it with CGO_ENABLED=0)", binPath)
	}
	p := "/" + path.Base(binPath)
	if len(entrypoint) == 0 {
		entrypoint = []string{p}
	}
	ports := map[string]struct{}{}
	for _, e := range exposed {
		ports[e] = struct{}{}
	}
	return Image{
		Names: names,
		Files: append(baseFiles(), File{Path: p, Mode: 0o755, Data: bin}),
		Config: ocispec.ImageConfig{
			Env:          []string{DefaultPath},
			Entrypoint:   entrypoint,
			WorkingDir:   "/",
			ExposedPorts: ports,
		},
	}, nil
}

// isStatic reports whether b is an ELF executable without a program
// interpreter (PT_INTERP), i.e. one that runs in an empty root.
func isStatic(b []byte) bool {
	if len(b) < 64 || string(b[:4]) != "\x7fELF" || b[4] != 2 /* 64-bit */ || b[5] != 1 /* little-endian */ {
		return false
	}
	le := func(o, n int) uint64 {
		var v uint64
		for i := n - 1; i >= 0; i-- {
			v = v<<8 | uint64(b[o+i])
		}
		return v
	}
	phoff, phentsize, phnum := int(le(32, 8)), int(le(54, 2)), int(le(56, 2))
	for i := range phnum {
		o := phoff + i*phentsize
		if o+4 > len(b) {
			return false
		}
		if le(o, 4) == 3 { // PT_INTERP
			return false
		}
	}
	return true
}

// Import loads an image tarball (an OCI layout, or a `docker save`
// archive) into containerd namespace ns, marks each image imported
// (LabelImported) and unpacks it into the overlayfs snapshotter, so
// containers start without a pull. It returns the names it imported.
func Import(ctx context.Context, c *client.Client, ns string, r io.Reader) ([]string, error) {
	ctx = namespaces.WithNamespace(ctx, ns)
	imgs, err := c.Import(ctx, r)
	if err != nil {
		return nil, fmt.Errorf("images: import into %s: %w", ns, err)
	}
	var names []string
	stamp := time.Now().UTC().Format(time.RFC3339)
	for _, img := range imgs {
		if img.Labels == nil {
			img.Labels = map[string]string{}
		}
		img.Labels[LabelImported] = stamp
		if img, err = c.ImageService().Update(ctx, img, "labels."+LabelImported); err != nil {
			return names, fmt.Errorf("images: label %s: %w", img.Name, err)
		}
		i := client.NewImage(c, img)
		if err := i.Unpack(ctx, Snapshotter); err != nil {
			return names, fmt.Errorf("images: unpack %s: %w", img.Name, err)
		}
		names = append(names, img.Name)
	}
	return names, nil
}

// ImportImage writes img and imports it into ns (see Import).
func ImportImage(ctx context.Context, c *client.Client, ns string, img Image) ([]string, error) {
	var buf bytes.Buffer
	if _, err := Write(&buf, img); err != nil {
		return nil, err
	}
	return Import(ctx, c, ns, &buf)
}

// EnsureBusybox imports the busybox image into ns unless every one of its
// names is already there, imported.
func EnsureBusybox(ctx context.Context, c *client.Client, ns string) error {
	have := true
	nctx := namespaces.WithNamespace(ctx, ns)
	for _, n := range []string{BusyboxName, DockerBusyboxName} {
		img, err := c.ImageService().Get(nctx, n)
		switch {
		case errdefs.IsNotFound(err):
			have = false
		case err != nil:
			return fmt.Errorf("images: look up %s: %w", n, err)
		case img.Labels[LabelImported] == "":
			// Imported before imports were marked: mark it again, or the
			// runtime would take it for a pulled image and pull :latest.
			have = false
		}
	}
	if have {
		return nil
	}
	img, err := Busybox("")
	if err != nil {
		return err
	}
	_, err = ImportImage(ctx, c, ns, img)
	return err
}

// Echo returns the image weir.local/echo (:latest, :v1 and :v2) built
// from the static weir-echo binary at binPath: HTTP on 8080, TCP echo on
// 9000, UDP echo on 9001.
func Echo(binPath string) (Image, error) {
	return StaticBinary([]string{EchoName, "weir.local/echo:v1", "weir.local/echo:v2"},
		binPath, []string{"/weir-echo"}, "8080/tcp", "9000/tcp", "9001/udp")
}

// EchoName is the echo image's main name.
const EchoName = "weir.local/echo:latest"
