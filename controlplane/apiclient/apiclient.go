// Package apiclient builds the clients weir's control loops use to reach
// the API server. client-go's typed clients send and prefer protobuf
// unless told otherwise; weir's server accepts protobuf request bodies but
// answers JSON only, so every loop talks JSON both ways. It owns no state.
package apiclient

import (
	"errors"
	"fmt"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// JSONConfig copies rc for a client that sends and accepts JSON only.
func JSONConfig(rc *rest.Config) *rest.Config {
	cfg := rest.CopyConfig(rc)
	cfg.ContentType = "application/json"
	cfg.AcceptContentTypes = "application/json"
	return cfg
}

// Typed returns a JSON clientset built from rc, or c itself when rc is
// nil (a test's own client). what names the caller in errors.
func Typed(what string, c kubernetes.Interface, rc *rest.Config) (kubernetes.Interface, error) {
	if rc == nil {
		if c == nil {
			return nil, errors.New(what + ": a client or a rest config is required")
		}
		return c, nil
	}
	kc, err := kubernetes.NewForConfig(JSONConfig(rc))
	if err != nil {
		return nil, fmt.Errorf("%s: build client: %w", what, err)
	}
	return kc, nil
}
