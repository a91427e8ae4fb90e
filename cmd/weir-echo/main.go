// Command weir-echo is the backend every data-plane test and benchmark
// uses; see package weir.dev/weir/test/echo for what it answers.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"weir.dev/weir/test/echo"
)

func main() {
	var cfg echo.Config
	flag.StringVar(&cfg.Hostname, "hostname", "", "name reported by GET / (default: the host name; in a pod, the pod name)")
	flag.StringVar(&cfg.HTTPAddr, "http", ":8080", `HTTP address ("-" disables)`)
	flag.StringVar(&cfg.TCPAddr, "tcp", ":9000", `TCP echo address ("-" disables)`)
	flag.StringVar(&cfg.UDPAddr, "udp", ":9001", `UDP echo address ("-" disables)`)
	drain := flag.Duration("drain", 2*time.Second, "after SIGTERM, answer /healthz 503 but keep serving this long, so load balancers stop sending first")
	flag.Parse()
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s, err := echo.Listen(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "weir-echo:", err)
		os.Exit(1)
	}
	// Serve until SIGTERM, then drain: report not ready while still
	// answering, as a well-behaved backend does during a rolling update.
	serveCtx, stopServe := context.WithCancel(context.Background())
	defer stopServe()
	go func() {
		<-ctx.Done()
		s.SetReady(false)
		time.Sleep(*drain)
		stopServe()
	}()
	if err := s.Serve(serveCtx); err != nil {
		fmt.Fprintln(os.Stderr, "weir-echo:", err)
		os.Exit(1)
	}
}
