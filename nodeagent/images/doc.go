// Package images builds small OCI image tarballs on the machine itself,
// because no registry is reachable where weir is developed and tested, and
// imports them into a containerd namespace.
//
// Busybox packs the host's static busybox (Debian's busybox-static) with a
// symlink per applet as weir.local/busybox:latest, also named
// docker.io/library/busybox:latest so manifests that say `image: busybox`
// run offline. StaticBinary packs any static executable (bin/weir-echo,
// for weir.local/echo) with an entrypoint. Write is the general packer.
// Tarballs are reproducible: fixed file order, mtime 0. Import loads a
// tarball (OCI layout or `docker save` archive) and marks the images
// imported (LabelImported).
//
// Puller pulls from registries through containerd's resolver: plain HTTP
// for loopback registries and those named insecure, HTTPS otherwise;
// weir.local images are never pulled (there is no such registry). A pull
// may carry credentials (Credential, read from image pull secrets by
// SecretCredentials; ParseDockerConfig, NormalizeRegistry and
// MatchCredentials are the pure parts): those for the image's registry
// host are tried in order, and pulls with different credentials are never
// merged into one.
// Package registrytest runs Debian's docker-registry for tests.
//
// The package owns image content only: it creates no containers.
package images
