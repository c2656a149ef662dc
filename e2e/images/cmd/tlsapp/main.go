// tlsapp is the e2e workload: `tlsapp serve` is an HTTPS server fed from mounted Secret and
// ConfigMap files; `tlsapp probe` is a client that proves the server accepted it.
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

	"lockstep.dev/e2e/images/internal/probe"
	"lockstep.dev/e2e/images/internal/serve"
)

const usage = `usage:
  tlsapp serve --listen :8443 --cert /tls/tls.crt --key /tls/tls.key [--ca /trust/ca.crt] [--crl /trust/ca.crl]
               [--reload watch|start] [--min-tls 1.2|1.3] [--max-tls 1.2|1.3] [--cbc]
               [--client-auth require|request|none] [--plaintext-listen :8080]
               [--message-file FILE]
  tlsapp probe --url https://IP:PORT/ --ca FILE [--crl FILE] [--cert FILE --key FILE] [--server-name NAME]
               [--count N] [--interval 1s] [--timeout 3s] [--plaintext] [--tcp-only]
               [--expect-fail] [--loop]`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var code int
	switch os.Args[1] {
	case "serve":
		code = runServe(ctx, os.Args[2:])
	case "probe":
		code = runProbe(ctx, os.Args[2:])
	default:
		fmt.Fprintln(os.Stderr, usage)
		code = 2
	}
	stop()
	os.Exit(code)
}

func runServe(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var cfg serve.Config
	fs.StringVar(&cfg.Listen, "listen", ":8443", "TLS listen address")
	fs.StringVar(&cfg.PlaintextListen, "plaintext-listen", "", "optional plain-HTTP listen address")
	fs.StringVar(&cfg.CertFile, "cert", "/tls/tls.crt", "certificate chain (PEM)")
	fs.StringVar(&cfg.KeyFile, "key", "/tls/tls.key", "private key (PEM)")
	fs.StringVar(&cfg.CAFile, "ca", "", "roots that verify client certificates (PEM)")
	fs.StringVar(&cfg.CRLFile, "crl", "", "CRLs (PEM) signed by --ca roots; listed client certificates are refused (a missing file is no CRL)")
	fs.StringVar(&cfg.Reload, "reload", "watch", "watch: reload changed files without restart; start: load once")
	fs.DurationVar(&cfg.PollInterval, "poll", time.Second, "how often --reload=watch compares file contents")
	minTLS := fs.String("min-tls", "1.2", "lowest TLS version: 1.2 or 1.3")
	maxTLS := fs.String("max-tls", "1.3", "highest TLS version: 1.2 or 1.3")
	fs.BoolVar(&cfg.CBC, "cbc", false, "also accept TLS 1.2 ECDHE CBC suites")
	fs.StringVar(&cfg.ClientAuth, "client-auth", "none", "require (verify against --ca), request (verify if given) or none")
	fs.StringVar(&cfg.MessageFile, "message-file", "", "answered as \"message\" to clients with a verified certificate (read per request)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var err error
	if cfg.MinTLS, err = serve.ParseVersion(*minTLS); err == nil {
		cfg.MaxTLS, err = serve.ParseVersion(*maxTLS)
	}
	log := slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.MessageKey {
				a.Key = "event"
			}
			return a
		},
	}))
	cfg.Log = log
	if err != nil {
		log.Error("config_error", "reason", err.Error())
		return 2
	}
	srv, err := serve.Start(ctx, cfg)
	if err != nil {
		log.Error("start_error", "reason", err.Error())
		return 1
	}
	if err := srv.Wait(); err != nil {
		log.Error("serve_error", "reason", err.Error())
		return 1
	}
	return 0
}

func runProbe(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	var cfg probe.Config
	fs.StringVar(&cfg.URL, "url", "", "https://IP:PORT/ (http:// with --plaintext)")
	fs.StringVar(&cfg.CertFile, "cert", "", "client certificate (PEM)")
	fs.StringVar(&cfg.KeyFile, "key", "", "client key (PEM)")
	fs.StringVar(&cfg.CAFile, "ca", "", "roots that verify the server (PEM)")
	fs.StringVar(&cfg.CRLFile, "crl", "", "CRLs (PEM) signed by --ca roots; a listed server certificate is refused (a missing file is no CRL)")
	fs.StringVar(&cfg.ServerName, "server-name", "", "name to verify the server certificate against (default: the URL's host)")
	fs.DurationVar(&cfg.Timeout, "timeout", 3*time.Second, "per-attempt timeout")
	fs.BoolVar(&cfg.Plaintext, "plaintext", false, "plain HTTP, no TLS")
	fs.BoolVar(&cfg.TCPOnly, "tcp-only", false, "only open a TCP connection")
	count := fs.Int("count", 1, "attempts")
	interval := fs.Duration("interval", time.Second, "pause between attempts")
	expectFail := fs.Bool("expect-fail", false, "succeed only if every attempt fails")
	loop := fs.Bool("loop", false, "probe until SIGTERM")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if cfg.URL == "" || *count < 1 {
		fmt.Fprintln(os.Stderr, "probe: --url is required and --count must be at least 1")
		return 2
	}
	if probe.Run(ctx, cfg, *count, *interval, *loop, *expectFail, os.Stdout) {
		return 0
	}
	return 1
}
