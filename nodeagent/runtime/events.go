package runtime

import (
	apievents "github.com/containerd/containerd/api/events"
	"github.com/containerd/typeurl/v2"
)

// exitContainerID is the container id of a /tasks/exit event, or "".
func exitContainerID(ev typeurl.Any) string {
	if ev == nil {
		return ""
	}
	v, err := typeurl.UnmarshalAny(ev)
	if err != nil {
		return ""
	}
	if e, ok := v.(*apievents.TaskExit); ok {
		return e.ContainerID
	}
	return ""
}
