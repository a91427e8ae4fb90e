package images

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/remotes"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/distribution/reference"
	"golang.org/x/sync/singleflight"
)

// LocalRegistry is the registry host of images built on the machine
// (weir.local/busybox, weir.local/echo). There is no such registry: these
// images are imported, never pulled.
const LocalRegistry = "weir.local"

// LabelImported marks an image record that Import wrote. An imported
// image came from a tarball, not a registry, so the runtime uses it as it
// is even under imagePullPolicy Always (re-resolving it could only fail
// on a machine without a registry; see Imported).
const LabelImported = "weir.dev/imported"

// ErrLocalOnly is returned for a pull of a weir.local image.
var ErrLocalOnly = errors.New("images: weir.local images are built on this machine and cannot be pulled (import them: weir image import, or make images)")

// Puller pulls images from registries into containerd namespaces and
// unpacks them into Snapshotter. Registries on loopback (127.0.0.0/8,
// ::1, localhost) and those named insecure are contacted over plain
// HTTP, every other one over HTTPS, as Docker and containerd do. Proxy
// settings come from the environment (loopback never goes through one).
// Its methods are safe for concurrent use.
type Puller struct {
	client   *client.Client
	insecure map[string]bool
	http     *http.Client
	group    singleflight.Group
}

// NewPuller returns a Puller over c. insecure lists registries reached
// over plain HTTP besides loopback ones, as HOST or HOST:PORT; a HOST
// entry covers every port of that host. It does no I/O.
func NewPuller(c *client.Client, insecure []string) (*Puller, error) {
	if c == nil {
		return nil, errors.New("images: no containerd client")
	}
	p := &Puller{client: c, insecure: map[string]bool{},
		http: &http.Client{Transport: docker.DefaultHTTPTransport(nil)}}
	for i, h := range insecure {
		if err := CheckRegistryHost(h); err != nil {
			return nil, fmt.Errorf("images: insecure registry [%d] %q: %w", i, h, err)
		}
		p.insecure[strings.ToLower(h)] = true
	}
	return p, nil
}

// CheckRegistryHost accepts HOST or HOST:PORT with a DNS name or an IP
// address (IPv6 in brackets when a port follows).
func CheckRegistryHost(h string) error {
	if h == "" {
		return errors.New("empty")
	}
	if strings.ContainsAny(h, "/ \t@") {
		return errors.New("want HOST or HOST:PORT, without a scheme or path")
	}
	host := h
	if hh, port, err := net.SplitHostPort(h); err == nil {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("port %q is not 1-65535", port)
		}
		host = hh
	}
	if net.ParseIP(strings.Trim(host, "[]")) != nil {
		return nil
	}
	if _, err := reference.ParseNormalizedNamed(host + "/x"); err != nil {
		return fmt.Errorf("not a registry host: %w", err)
	}
	return nil
}

// PlainHTTP reports whether registry host (as in a reference:
// "127.0.0.1:5000", "registry.example") is contacted over plain HTTP.
func (p *Puller) PlainHTTP(host string) bool {
	if ok, err := docker.MatchLocalhost(host); err == nil && ok {
		return true
	}
	host = strings.ToLower(host)
	if p.insecure[host] {
		return true
	}
	if h, _, err := net.SplitHostPort(host); err == nil && p.insecure[h] {
		return true
	}
	return false
}

// Resolver is the registry resolver pulls use; Push through it reaches
// the same registries the same way. With creds, it answers a registry's
// authentication challenge with the first of them for that registry's
// host (MatchCredentials); without, it is anonymous.
func (p *Puller) Resolver(creds ...Credential) remotes.Resolver {
	return docker.NewResolver(docker.ResolverOptions{
		Hosts: docker.ConfigureDefaultRegistries(
			docker.WithPlainHTTP(func(h string) (bool, error) { return p.PlainHTTP(h), nil }),
			docker.WithClient(p.http),
			docker.WithAuthorizer(docker.NewDockerAuthorizer(docker.WithAuthClient(p.http),
				docker.WithAuthCreds(func(host string) (string, string, error) {
					// host is the one being asked (registry-1.docker.io
					// for docker.io), never a token server's.
					if m := MatchCredentials(creds, host); len(m) > 0 {
						return m[0].Username, m[0].Password, nil
					}
					return "", "", nil
				}))),
		),
	})
}

// Pull fetches ref ("127.0.0.1:5000/weir/busybox:v1"; short names are
// normalised as Docker does) into namespace ns and unpacks it.
//
// creds are the credentials the pod may pull with (its imagePullSecrets,
// in order). Those for ref's registry host are tried one after the other,
// the first pull that succeeds wins (as the kubelet tries each matching
// credential); if none succeeds the errors of all are returned. Without a
// matching credential the pull is anonymous.
//
// Concurrent pulls of one reference into one namespace with the same
// credential share a single pull (pulls with different credentials never
// share a result: one pod's credentials must not let another pod's pull
// through); a caller whose ctx ends stops waiting, while the pull goes on
// for the others until its own deadline (pullTimeout).
func (p *Puller) Pull(ctx context.Context, ns, ref string, creds ...Credential) (client.Image, error) {
	named, err := reference.ParseDockerRef(ref)
	if err != nil {
		return nil, fmt.Errorf("images: pull %q: %w", ref, err)
	}
	ref = named.String()
	if reference.Domain(named) == LocalRegistry {
		return nil, fmt.Errorf("pull %s: %w", ref, ErrLocalOnly)
	}
	matching := MatchCredentials(creds, reference.Domain(named))
	if len(matching) == 0 {
		return p.pullWith(ctx, ns, ref, nil)
	}
	var errs []error
	for _, c := range matching {
		img, err := p.pullWith(ctx, ns, ref, &c)
		if err == nil {
			return img, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
		if len(matching) > 1 {
			err = fmt.Errorf("with the credential of user %q: %w", c.Username, err)
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

// pullWith pulls ref with one credential (nil: anonymously), sharing the
// pull with concurrent callers that use the same credential.
func (p *Puller) pullWith(ctx context.Context, ns, ref string, cred *Credential) (client.Image, error) {
	key := ns + "\x00" + ref + "\x00"
	var creds []Credential
	if cred != nil {
		key += cred.digest()
		creds = []Credential{*cred}
	}
	ch := p.group.DoChan(key, func() (any, error) {
		pctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.WithoutCancel(ctx), ns), pullTimeout)
		defer cancel()
		img, err := p.client.Pull(pctx, ref,
			client.WithResolver(p.Resolver(creds...)),
			client.WithPullUnpack,
			client.WithPullSnapshotter(Snapshotter))
		if err != nil {
			return nil, fmt.Errorf("pull %s: %w", ref, err)
		}
		return img, nil
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.(client.Image), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// pullTimeout bounds one pull, so a registry that stops answering does
// not hold the pods that wait for it forever.
const pullTimeout = 10 * time.Minute

// Imported reports whether img came from a tarball (Import), not a
// registry.
func Imported(img client.Image) bool {
	_, ok := img.Labels()[LabelImported]
	return ok
}
