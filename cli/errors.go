package cli

import (
	"errors"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ErrExit is returned (wrapped) when a verb has already printed its errors
// and only the exit status is left to set.
var ErrExit = errors.New("cli: exit status 1")

// FormatError renders err as kubectl prints it: "Error from server
// (NotFound): deployments.apps "x" not found" for API errors, "The
// Deployment "x" is invalid: …" for invalid objects, "error: …" otherwise.
// Several joined errors become several lines.
func FormatError(err error) string {
	if err == nil {
		return ""
	}
	if errors.Is(err, ErrExit) {
		return ""
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var lines []string
		for _, e := range j.Unwrap() {
			if s := FormatError(e); s != "" {
				lines = append(lines, s)
			}
		}
		return strings.Join(lines, "\n")
	}
	var st apierrors.APIStatus
	if errors.As(err, &st) {
		s := st.Status()
		msg := s.Message
		// Keep the context a verb added ("error when creating "f.yaml": …").
		if full := err.Error(); full != msg && strings.HasSuffix(full, msg) {
			msg = full
		}
		switch {
		case s.Reason == metav1.StatusReasonInvalid && s.Details != nil:
			return invalidMessage(s, strings.TrimSuffix(msg, s.Message))
		case s.Reason == metav1.StatusReasonInvalid:
			return msg
		case s.Reason != "" && s.Reason != metav1.StatusReasonUnknown:
			return fmt.Sprintf("Error from server (%s): %s", s.Reason, msg)
		default:
			return fmt.Sprintf("Error from server: %s", msg)
		}
	}
	msg := err.Error()
	if strings.HasPrefix(msg, "error: ") || strings.HasPrefix(msg, "Error from server") {
		return msg
	}
	return "error: " + msg
}

// invalidMessage is kubectl's wording of a 422: "The Service "x" is
// invalid: <cause>", one "* cause" line each when there are several;
// prefix keeps where the object came from.
func invalidMessage(s metav1.Status, prefix string) string {
	d := s.Details
	kind := d.Kind
	if i := strings.Index(kind, "."); i >= 0 {
		kind = kind[:i]
	}
	head := fmt.Sprintf("%sThe %s %q is invalid", prefix, kind, d.Name)
	var causes []string
	for _, c := range d.Causes {
		cause := c.Message
		if c.Field != "" {
			cause = c.Field + ": " + c.Message
		}
		causes = append(causes, cause)
	}
	switch len(causes) {
	case 0:
		return head + ": " + s.Message
	case 1:
		return head + ": " + causes[0]
	}
	return head + ": \n* " + strings.Join(causes, "\n* ")
}
