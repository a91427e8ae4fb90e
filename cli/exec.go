package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"golang.org/x/term"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"
	"k8s.io/streaming/pkg/httpstream"
)

// DefaultContainerAnnotation names the container picked when a command
// names none.
const DefaultContainerAnnotation = "kubectl.kubernetes.io/default-container"

// DefaultContainer picks the container of pod a logs or exec without -c
// means: the only one, else the default-container annotation's; otherwise
// an error listing the choices, as kubectl words it.
func DefaultContainer(pod *corev1.Pod) (string, error) {
	if len(pod.Spec.Containers) == 1 {
		return pod.Spec.Containers[0].Name, nil
	}
	var names, inits []string
	for _, c := range pod.Spec.Containers {
		names = append(names, c.Name)
	}
	for _, c := range pod.Spec.InitContainers {
		inits = append(inits, c.Name)
	}
	if d := pod.Annotations[DefaultContainerAnnotation]; d != "" {
		for _, n := range append(append([]string(nil), names...), inits...) {
			if n == d {
				return d, nil
			}
		}
	}
	if len(names) == 0 {
		return "", fmt.Errorf("pod %s does not have any containers", pod.Name)
	}
	msg := fmt.Sprintf("a container name must be specified for pod %s, choose one of: %v", pod.Name, names)
	if len(inits) > 0 {
		msg += fmt.Sprintf(" or one of the init containers: %v", inits)
	}
	return "", errors.New(msg)
}

// ExitCodeError is a remote command's non-zero exit; weir exits with Code.
type ExitCodeError struct{ Code int }

func (e ExitCodeError) Error() string {
	return fmt.Sprintf("command terminated with exit code %d", e.Code)
}

// ExecOptions are exec's flags.
type ExecOptions struct {
	Container string
	Stdin     bool // -i
	TTY       bool // -t
}

// Exec runs a command in a container through pods/exec, over WebSocket
// (v5.channel.k8s.io) with SPDY as the fallback, as kubectl does. The
// command's non-zero exit comes back as an ExitCodeError.
func (c *Client) Exec(ctx context.Context, s Streams, o ExecOptions, args []string) error {
	if len(args) < 2 {
		return errors.New("you must specify at least one command for the container")
	}
	name, err := podArg(args[:1])
	if err != nil {
		return err
	}
	pod, err := c.Typed.CoreV1().Pods(c.Namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return fmt.Errorf("cannot exec into a container in a completed pod; current phase is %s", pod.Status.Phase)
	}
	container := o.Container
	if container == "" {
		if container, err = DefaultContainer(pod); err != nil {
			return err
		}
	}
	tty := o.TTY
	in, isFile := s.In.(*os.File)
	if tty && (!o.Stdin || !isFile || !term.IsTerminal(int(in.Fd()))) {
		if o.Stdin {
			fmt.Fprintln(s.ErrOut, "Unable to use a TTY - input is not a terminal or the right kind of file")
		} else {
			fmt.Fprintln(s.ErrOut, "Unable to use a TTY - input is not attached (use -i)")
		}
		tty = false
	}
	req := c.Typed.CoreV1().RESTClient().Post().Resource("pods").Namespace(c.Namespace).Name(name).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{
			Container: container, Command: args[1:], Stdin: o.Stdin, Stdout: true, Stderr: !tty, TTY: tty,
		}, scheme.ParameterCodec)
	spdy, err := remotecommand.NewSPDYExecutor(c.Config, "POST", req.URL())
	if err != nil {
		return fmt.Errorf("build exec client: %w", err)
	}
	ws, err := remotecommand.NewWebSocketExecutor(c.Config, "GET", req.URL().String())
	if err != nil {
		return fmt.Errorf("build exec client: %w", err)
	}
	ex, err := remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
	if err != nil {
		return fmt.Errorf("build exec client: %w", err)
	}
	so := remotecommand.StreamOptions{Stdout: s.Out, Tty: tty}
	if o.Stdin {
		so.Stdin = s.In
	}
	if !tty {
		so.Stderr = s.ErrOut
	}
	if tty {
		old, err := term.MakeRaw(int(in.Fd()))
		if err != nil {
			return fmt.Errorf("put the terminal in raw mode: %w", err)
		}
		defer term.Restore(int(in.Fd()), old)
		q := newSizeQueue(ctx, int(in.Fd()))
		defer q.stop()
		so.TerminalSizeQueue = q
	}
	err = ex.StreamWithContext(ctx, so)
	var ce utilexec.CodeExitError
	if errors.As(err, &ce) {
		return ExitCodeError{Code: ce.Code}
	}
	return err
}

// sizeQueue reports the terminal's size at start and on every SIGWINCH.
type sizeQueue struct {
	fd   int
	ch   chan remotecommand.TerminalSize
	sig  chan os.Signal
	done chan struct{}
	once sync.Once
}

func newSizeQueue(ctx context.Context, fd int) *sizeQueue {
	q := &sizeQueue{fd: fd, ch: make(chan remotecommand.TerminalSize, 1), sig: make(chan os.Signal, 1), done: make(chan struct{})}
	signal.Notify(q.sig, syscall.SIGWINCH)
	q.push()
	go func() {
		for {
			select {
			case <-q.sig:
				q.push()
			case <-ctx.Done():
				q.stop()
				return
			case <-q.done:
				return
			}
		}
	}()
	return q
}

func (q *sizeQueue) push() {
	w, h, err := term.GetSize(q.fd)
	if err != nil {
		return
	}
	select {
	case q.ch <- remotecommand.TerminalSize{Width: uint16(w), Height: uint16(h)}:
	default:
	}
}

func (q *sizeQueue) Next() *remotecommand.TerminalSize {
	select {
	case sz := <-q.ch:
		return &sz
	case <-q.done:
		return nil
	}
}

func (q *sizeQueue) stop() {
	q.once.Do(func() {
		signal.Stop(q.sig)
		close(q.done)
	})
}
