// Package manifest reads Kubernetes manifests (multi-document YAML or
// JSON from files, directories or stdin), checks each document against
// its Go type before anything is sent, and computes the patches of
// kubectl's client-side apply: the last-applied-configuration annotation
// and a three-way strategic merge (JSON merge for kinds it has no Go type
// for). It is pure apart from reading the files it is given.
package manifest
