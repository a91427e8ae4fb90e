package agentserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	"k8s.io/streaming/pkg/httpstream/wsstream"

	"weir.dev/weir/nodeagent/runtime"
)

// ExecOptions are the query parameters of an exec request, in the
// kubelet's names: command (repeated), input, output, error, tty.
type ExecOptions struct {
	Command               []string
	Stdin, Stdout, Stderr bool
	TTY                   bool
}

// ParseExecOptions reads an exec query. A TTY merges stderr into stdout,
// so stderr is dropped with one, as the kubelet does.
func ParseExecOptions(q url.Values) (ExecOptions, error) {
	o := ExecOptions{Command: q["command"]}
	if len(o.Command) == 0 || o.Command[0] == "" {
		return o, errors.New("command: you must specify at least one command for the container")
	}
	flag := func(name string) bool { v := q.Get(name); return v == "1" || v == "true" }
	o.Stdin, o.Stdout, o.Stderr, o.TTY = flag(remotecommand.ExecStdinParam), flag(remotecommand.ExecStdoutParam),
		flag(remotecommand.ExecStderrParam), flag(remotecommand.ExecTTYParam)
	if o.TTY {
		o.Stderr = false
	}
	if !o.Stdin && !o.Stdout && !o.Stderr {
		return o, errors.New("you must specify at least 1 of stdin, stdout, stderr")
	}
	return o, nil
}

// Stream timeouts: a session idle this long is closed (the kubelet's
// streaming-connection-idle-timeout default), and a SPDY client has this
// long to open its streams.
const (
	idleTimeout           = 4 * time.Hour
	streamCreationTimeout = remotecommand.DefaultStreamCreationTimeout
)

// WebSocket subprotocols: v5 adds closing stdin (kubectl 1.30+ asks for
// it first); v4 carries the exit code in the error channel's Status.
const (
	protoV5       = "v5.channel.k8s.io"
	protoV4       = "v4.channel.k8s.io"
	protoV4Base64 = "v4.base64.channel.k8s.io"
)

func (s *Server) serveExec(w http.ResponseWriter, r *http.Request) {
	pod, container, err := s.pod(r)
	if err != nil {
		writeStatus(w, err)
		return
	}
	o, err := ParseExecOptions(r.URL.Query())
	if err != nil {
		writeStatus(w, apierrors.NewBadRequest(err.Error()))
		return
	}
	if wsstream.IsWebSocketRequest(r) {
		s.serveExecWebSocket(w, r, pod, container, o)
		return
	}
	// SPDY (kubectl before 1.30, and its fallback): the field's server.
	remotecommand.ServeExec(w, r, executor{s: s, pod: pod}, pod.Name, string(pod.UID), container, o.Command,
		&remotecommand.Options{Stdin: o.Stdin, Stdout: o.Stdout, Stderr: o.Stderr, TTY: o.TTY},
		idleTimeout, streamCreationTimeout, remotecommand.SupportedStreamingProtocols)
}

// executor adapts the runtime to the SPDY server.
type executor struct {
	s   *Server
	pod *corev1.Pod
}

func (e executor) ExecInContainer(ctx context.Context, _, _, container string, cmd []string, in io.Reader, out, errw io.WriteCloser,
	tty bool, resize <-chan remotecommand.TerminalSize, _ time.Duration) error {
	sio := runtime.ExecIO{TTY: tty}
	if in != nil {
		sio.Stdin = in
	}
	if out != nil {
		sio.Stdout = out
	}
	if errw != nil {
		sio.Stderr = errw
	}
	if resize != nil {
		ch := make(chan runtime.TerminalSize)
		go func() {
			defer close(ch)
			for sz := range resize {
				select {
				case ch <- runtime.TerminalSize{Width: sz.Width, Height: sz.Height}:
				case <-ctx.Done():
					return
				}
			}
		}()
		sio.Resize = ch
	}
	code, err := e.s.cfg.Runtime.Exec(ctx, e.pod, container, cmd, sio)
	if err != nil {
		return err
	}
	if code != 0 {
		return exitError(code)
	}
	return nil
}

// exitError is a non-zero exit as k8s.io/utils/exec.ExitError, which the
// SPDY server turns into a NonZeroExitCode status.
type exitError int

func (e exitError) Error() string   { return "command terminated with exit code " + strconv.Itoa(int(e)) }
func (e exitError) String() string  { return e.Error() }
func (e exitError) Exited() bool    { return true }
func (e exitError) ExitStatus() int { return int(e) }

// Channel numbers of the WebSocket protocols.
const (
	chanStdin = iota
	chanStdout
	chanStderr
	chanError
	chanResize
)

func (s *Server) serveExecWebSocket(w http.ResponseWriter, r *http.Request, pod *corev1.Pod, container string, o ExecOptions) {
	chans := make([]wsstream.ChannelType, 5)
	pick := func(on bool, t wsstream.ChannelType) wsstream.ChannelType {
		if on {
			return t
		}
		return wsstream.IgnoreChannel
	}
	chans[chanStdin] = pick(o.Stdin, wsstream.ReadChannel)
	chans[chanStdout] = pick(o.Stdout, wsstream.WriteChannel)
	chans[chanStderr] = pick(o.Stderr, wsstream.WriteChannel)
	chans[chanError] = wsstream.WriteChannel
	chans[chanResize] = wsstream.ReadChannel
	conn := wsstream.NewConn(map[string]wsstream.ChannelProtocolConfig{
		protoV5:       {Binary: true, Channels: chans},
		protoV4:       {Binary: true, Channels: chans},
		protoV4Base64: {Binary: false, Channels: chans},
	})
	conn.SetIdleTimeout(idleTimeout)
	_, streams, err := conn.Open(w, r)
	if err != nil {
		s.cfg.Logger.Debug("exec websocket upgrade", slog.Any("error", err))
		return
	}
	defer conn.Close()
	// An empty frame on the first writable channel tells the client the
	// session is up.
	switch {
	case o.Stdout:
		_, _ = streams[chanStdout].Write(nil)
	case o.Stderr:
		_, _ = streams[chanStderr].Write(nil)
	default:
		_, _ = streams[chanError].Write(nil)
	}
	sio := runtime.ExecIO{TTY: o.TTY}
	if o.Stdin {
		sio.Stdin = streams[chanStdin]
	}
	if o.Stdout {
		sio.Stdout = streams[chanStdout]
	}
	if o.Stderr {
		sio.Stderr = streams[chanStderr]
	}
	if o.TTY {
		ch := make(chan runtime.TerminalSize)
		go func() {
			defer close(ch)
			dec := json.NewDecoder(streams[chanResize])
			for {
				var sz struct{ Width, Height uint16 }
				if err := dec.Decode(&sz); err != nil {
					return
				}
				select {
				case ch <- runtime.TerminalSize{Width: sz.Width, Height: sz.Height}:
				case <-r.Context().Done():
					return
				}
			}
		}()
		sio.Resize = ch
	}
	code, err := s.cfg.Runtime.Exec(r.Context(), pod, container, o.Command, sio)
	_ = json.NewEncoder(streams[chanError]).Encode(ExecStatus(code, err))
}

// ExecStatus is the Status a v4/v5 client reads from the error channel:
// Success, NonZeroExitCode with the code as an ExitCode cause, or Failure
// with the error.
func ExecStatus(code int, err error) metav1.Status {
	st := metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}}
	switch {
	case err != nil:
		st.Status, st.Message = metav1.StatusFailure, fmt.Sprintf("error executing command in container: %v", err)
		st.Reason, st.Code = metav1.StatusReasonInternalError, http.StatusInternalServerError
		var nre *runtime.NotRunningError
		if errors.As(err, &nre) {
			st.Message, st.Reason, st.Code = nre.Message, metav1.StatusReasonBadRequest, http.StatusBadRequest
		}
	case code != 0:
		st.Status, st.Reason = metav1.StatusFailure, remotecommand.NonZeroExitCodeReason
		st.Message = fmt.Sprintf("command terminated with non-zero exit code: command terminated with exit code %d", code)
		st.Details = &metav1.StatusDetails{Causes: []metav1.StatusCause{
			{Type: remotecommand.ExitCodeCauseType, Message: strconv.Itoa(code)},
		}}
	default:
		st.Status = metav1.StatusSuccess
	}
	return st
}
