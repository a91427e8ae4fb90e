package server

import (
	"context"
	"log/slog"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"weir.dev/weir/controlplane/controller/gc"
	"weir.dev/weir/controlplane/controller/namespace"
)

// DefaultLoops are the singleton loops every weir server runs when it leads.
func DefaultLoops() []Loop {
	return []Loop{
		{Name: "garbage-collector", Run: func(ctx context.Context, c kubernetes.Interface, rc *rest.Config) error {
			return gc.New(c, rc, slog.Default().With("loop", "garbage-collector")).Run(ctx)
		}},
		{Name: "namespace", Run: func(ctx context.Context, c kubernetes.Interface, rc *rest.Config) error {
			return namespace.New(c, rc, slog.Default().With("loop", "namespace")).Run(ctx)
		}},
	}
}
