package server

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"weir.dev/weir/controlplane/controller/deployment"
	"weir.dev/weir/controlplane/controller/endpointslice"
	"weir.dev/weir/controlplane/controller/gc"
	"weir.dev/weir/controlplane/controller/namespace"
	"weir.dev/weir/controlplane/controller/replicaset"
	"weir.dev/weir/controlplane/scheduler"
)

// DefaultLoops are the singleton loops every weir server runs when it leads.
func DefaultLoops() []Loop {
	return []Loop{
		{Name: "garbage-collector", Run: func(ctx context.Context, c kubernetes.Interface, rc *rest.Config, log *slog.Logger, reg prometheus.Registerer) error {
			return gc.New(c, rc, log).Run(ctx)
		}},
		{Name: "namespace", Run: func(ctx context.Context, c kubernetes.Interface, rc *rest.Config, log *slog.Logger, reg prometheus.Registerer) error {
			return namespace.New(c, rc, log).Run(ctx)
		}},
		{Name: "replicaset", Run: func(ctx context.Context, c kubernetes.Interface, rc *rest.Config, log *slog.Logger, reg prometheus.Registerer) error {
			return replicaset.New(c, rc, log).Run(ctx)
		}},
		{Name: "endpointslice", Run: func(ctx context.Context, c kubernetes.Interface, rc *rest.Config, log *slog.Logger, reg prometheus.Registerer) error {
			return endpointslice.New(c, rc, log, reg).Run(ctx)
		}},
		{Name: "scheduler", Run: func(ctx context.Context, c kubernetes.Interface, rc *rest.Config, log *slog.Logger, reg prometheus.Registerer) error {
			return scheduler.New(c, rc, log, reg).Run(ctx)
		}},
		{Name: "deployment", Run: func(ctx context.Context, c kubernetes.Interface, rc *rest.Config, log *slog.Logger, reg prometheus.Registerer) error {
			return deployment.New(c, rc, log).Run(ctx)
		}},
	}
}
