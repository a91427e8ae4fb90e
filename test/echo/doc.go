// Package echo is the small server every data-plane test and benchmark
// uses as a backend (bin/weir-echo; the image weir.local/echo). It reports
// the client address it saw, which is how tests tell which backend answered
// and whether the client's address was preserved:
//
//   - HTTP (default :8080): GET / answers "hostname=<name> client=<ip:port>\n"
//     (JSON {"hostname":…,"client":…} when the request accepts
//     application/json); /healthz answers 200 while ready and 503 when not;
//     /set-ready?v=0|1 changes readiness.
//   - TCP echo (default :9000): every byte comes back.
//   - UDP echo (default :9001): every datagram comes back to its sender;
//     a datagram that is exactly "whoami" gets the GET / line instead.
//
// It owns nothing beyond its sockets and never touches the network setup
// around it.
package echo
