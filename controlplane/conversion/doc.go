// Package conversion upgrades manifests written for API versions Kubernetes
// has since removed (extensions/v1beta1, apps/v1beta1, apps/v1beta2,
// batch/v1beta1, batch/v2alpha1) to the versions weir serves (apps/v1,
// batch/v1), so an old manifest still applies, with a deprecation warning in
// Kubernetes' wording.
//
// It owns the mapping from legacy group/version/kind to current ones and the
// field-level differences between them: fields the current version lacks
// are dropped, a missing selector is taken from the template labels as the
// old versions did, and where an old default meant something different
// (extensions/v1beta1 DaemonSets and apps/v1beta1 StatefulSets updated
// OnDelete) the old default is written out so the object keeps behaving as
// its author expected.
//
// It works on JSON objects, before decoding into typed objects, and must not
// default, validate or store anything: the API server decodes the result and
// hands it to packages defaults and validation like any current object.
// Everything here is a pure function, safe for concurrent use.
package conversion
