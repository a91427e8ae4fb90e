// Package cli implements weir's kubectl-like verbs (get, describe, apply,
// create, replace, delete, label, annotate, scale, set image, rollout,
// expose, run, logs, exec, cordon, uncordon, drain) as functions over a
// Client built from a kubeconfig. The cobra wiring lives in cmd/weir/app;
// this package owns behaviour and kubectl's wording, and prints only to the
// Streams it is given. Column layouts come from cli/printers, describe
// text from cli/describe, manifest parsing and three-way merges from
// cli/manifest.
package cli
