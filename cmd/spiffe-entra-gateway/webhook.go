package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os/signal"
	"syscall"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/workload/webhook"
)

// webhookCommand runs the mutating admission webhook. It is a command of its
// own, not a role of serve: it needs the Kubernetes API (its
// MutatingWebhookConfiguration, ServiceAccounts) where the gateway needs
// none, it sits on the path of every opted-in pod's creation and so scales
// and rolls out on its own, and it holds no state, where the gateway's
// SQLite store pins it to one pod.
func webhookCommand(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("webhook", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "the webhook's configuration file (docs/kubernetes.md)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *path == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "webhook: want --config FILE and no arguments")
		return 2
	}
	cfg, err := webhook.LoadConfig(*path)
	if err != nil {
		fmt.Fprintf(stderr, "webhook: %v\n", err)
		return 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); cfg.LogLevel != "" && err != nil {
		fmt.Fprintf(stderr, "webhook: logLevel %q: want debug, info, warn or error\n", cfg.LogLevel)
		return 2
	}
	logger := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := webhook.Serve(ctx, cfg, logger); err != nil {
		logger.Error("webhook stopped", "error", err)
		return 1
	}
	return 0
}
