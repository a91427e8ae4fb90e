// Package validation checks objects the way kube-apiserver does before it
// stores them, and reports what is wrong in Kubernetes' own words: a
// field.ErrorList whose entries carry the field path, the error type and the
// message kube-apiserver would give, so that
//
//	errs.ToAggregate().Error()
//
// reads like "spec.ports[0].port: Invalid value: 70000: must be between 1 and
// 65535, inclusive" and kubectl users recognise it.
//
// It owns the validation rules for the kinds weir serves (see Validate), on
// create and on update, including which fields are immutable. It expects
// objects that went through defaults.Default (and, for Service updates,
// defaults.DefaultServiceUpdate), as kube-apiserver validates only defaulted
// objects; an undefaulted object reports the missing defaults as required.
//
// It must not mutate what it is given, read the store, allocate cluster IPs
// or node ports, or check node-port ranges (the API server's allocator owns
// those), and it does not enforce resourceVersion preconditions or carry
// system fields (uid, creationTimestamp, generation) over from the stored
// object: the API server does that before calling Validate. Rules that need
// cluster state (PriorityClasses, ServiceAccounts, quota) are admission, not
// validation, and are not here.
package validation
