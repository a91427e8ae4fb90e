// Command apibench runs the control-plane benchmark and writes its figures
// under -out as JSON and Markdown.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	"weir.dev/weir/bench/apibench"
)

func main() {
	var (
		o     apibench.Options
		out   string
		quick bool
	)
	flag.StringVar(&o.Binary, "weir", "bin/weir", "weir binary to benchmark")
	flag.IntVar(&o.Pods, "pods", 10000, "pods to create")
	flag.IntVar(&o.Clients, "clients", 64, "concurrent creating clients")
	flag.IntVar(&o.Watchers, "watchers", 1000, "concurrent watchers")
	flag.IntVar(&o.Events, "events", 200, "events per watcher")
	flag.DurationVar(&o.EventGap, "event-gap", 20*time.Millisecond, "pause between watched writes")
	flag.DurationVar(&o.Cap, "cap", 10*time.Minute, "time cap for the whole run")
	flag.StringVar(&o.WorkDir, "workdir", "", "where the server's data dir goes (default: temp)")
	flag.StringVar(&out, "out", "bench/results", "output directory")
	flag.BoolVar(&quick, "quick", false, "small sizes for a smoke run")
	flag.Parse()
	if quick {
		o.Pods, o.Watchers, o.Events = 1000, 100, 50
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := apibench.Run(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "apibench:", err)
		os.Exit(1)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "apibench:", err)
		os.Exit(1)
	}
	js, _ := json.MarshalIndent(res, "", "  ")
	_ = os.WriteFile(filepath.Join(out, "api.json"), append(js, '\n'), 0o644)
	md := res.Markdown()
	_ = os.WriteFile(filepath.Join(out, "api.md"), []byte(md), 0o644)
	fmt.Print(md)
}
