package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "serve":
		err = serve(ctx, args, getenv, stdout, stderr)
	case "token":
		err = token(args, getenv, stdout, stderr)
	case "publish":
		err = publish(ctx, args, getenv, stdout, stderr)
	case "healthcheck":
		err = healthcheck(ctx, args, getenv, stderr)
	case "bench":
		err = bench(ctx, args, getenv, stdout, stderr)
	default:
		fmt.Fprintf(stderr, "presencehub: unknown command %q (serve, token, publish, bench, healthcheck)\n", cmd)
		return 2
	}
	if err != nil {
		fmt.Fprintln(stderr, "presencehub:", err)
		return 1
	}
	return 0
}
