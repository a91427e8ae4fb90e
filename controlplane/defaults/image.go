package defaults

import (
	"regexp"

	corev1 "k8s.io/api/core/v1"
)

// imageRef is the distribution reference grammar (what docker and
// containerd accept): an optional registry host, lowercase path components,
// an optional tag and an optional digest.
var imageRef = func() *regexp.Regexp {
	const (
		alnum           = `[a-z0-9]+`
		separator       = `(?:[._]|__|[-]+)`
		pathComponent   = alnum + `(?:` + separator + alnum + `)*`
		domainComponent = `(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])`
		host            = `(?:` + domainComponent + `(?:\.` + domainComponent + `)*|\[[a-fA-F0-9:]+\])`
		domain          = host + `(?::[0-9]+)?`
		name            = `(?:` + domain + `/)?` + pathComponent + `(?:/` + pathComponent + `)*`
		tag             = `[\w][\w.-]{0,127}`
		digest          = `[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[[:xdigit:]]{32,}`
	)
	return regexp.MustCompile(`^(` + name + `)(?::(` + tag + `))?(?:@(` + digest + `))?$`)
}()

// maxImageNameLength is the longest repository name the reference grammar
// accepts.
const maxImageNameLength = 255

// pullPolicyFor is Kubernetes' imagePullPolicy default: Always for the
// floating "latest" tag (written or implied), IfNotPresent for anything
// pinned. An image Kubernetes cannot parse also gets IfNotPresent; validation
// or the runtime reports the bad reference.
func pullPolicyFor(image string) corev1.PullPolicy {
	m := imageRef.FindStringSubmatch(image)
	if m == nil || len(m[1]) > maxImageNameLength {
		return corev1.PullIfNotPresent
	}
	tag, digest := m[2], m[3]
	if tag == "latest" || (tag == "" && digest == "") {
		return corev1.PullAlways
	}
	return corev1.PullIfNotPresent
}
