// Package agentserver is the node agent's HTTPS endpoint, the kubelet
// server's counterpart: container logs (GET /containerLogs/{ns}/{pod}/{c})
// and exec (/exec/{ns}/{pod}/{c}) over the Kubernetes streaming protocols
// (WebSocket v5.channel.k8s.io and v4, SPDY v4 down to v1). The API server
// proxies pods/log and pods/exec here. It serves with a certificate the
// cluster CA signed for the node's addresses and admits only clients whose
// CA-signed certificate names the API server's kubelet client or an admin.
//
// Log files are in the CRI log format (package crilog), so the log query
// is the kubelet's in full: follow, previous, tailLines (records from the
// end), limitBytes (of output), timestamps (the time each line was
// written, RFC3339 with nanoseconds), sinceSeconds and sinceTime.
//
// It owns the HTTP side only: finding pods is the agent's pod loop's,
// running processes and locating log files the runtime's.
package agentserver
