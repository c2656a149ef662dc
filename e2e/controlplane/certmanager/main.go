// Command cert-manager-controller runs cert-manager's own Certificate,
// CertificateRequest (CA and SelfSigned), Issuer/ClusterIssuer and approver
// controllers out of cluster, for a local control plane that has no way to
// run the upstream container image. It links the public packages of the
// upstream module; cmd/controller itself cannot be fetched as a module.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/sets"
	logsapi "k8s.io/component-base/logs/api/v1"

	"github.com/cert-manager/cert-manager/pkg/controller"
	logf "github.com/cert-manager/cert-manager/pkg/logs"
	"github.com/cert-manager/cert-manager/pkg/util"
	utilfeature "github.com/cert-manager/cert-manager/pkg/util/feature"
)

const upstreamModule = "github.com/cert-manager/cert-manager"

type options struct {
	kubeconfig               string
	namespace                string
	clusterResourceNamespace string
	controllers              []string
	workers                  int
	qps                      float32
	burst                    int
	enableOwnerRef           bool
	minBackoff               time.Duration
	maxBackoff               time.Duration
	featureGates             string
	metricsAddress           string
	healthzAddress           string
	leaderElect              bool
	leaderElectionNamespace  string
	leaseDuration            time.Duration
	renewDeadline            time.Duration
	retryPeriod              time.Duration
	logging                  *logsapi.LoggingConfiguration
}

// Defaults follow upstream's controller configuration, except where running
// next to a throwaway local API server calls for something else (noted).
func parseFlags(args []string) (*options, error) {
	o := &options{logging: logsapi.NewLoggingConfiguration()}
	fs := pflag.NewFlagSet("cert-manager-controller", pflag.ContinueOnError)
	fs.StringVar(&o.kubeconfig, "kubeconfig", os.Getenv("KUBECONFIG"), "Path to the kubeconfig of the API server (default $KUBECONFIG; empty means in-cluster config).")
	fs.StringVar(&o.namespace, "namespace", "", "Only watch this namespace (empty: all namespaces; ClusterIssuers are then not reconciled).")
	// Upstream defaults to kube-system; a test cluster keeps cert-manager's
	// own objects in the cert-manager namespace, like the Helm chart does.
	fs.StringVar(&o.clusterResourceNamespace, "cluster-resource-namespace", "cert-manager", "Namespace holding the Secrets that ClusterIssuers refer to.")
	fs.StringSliceVar(&o.controllers, "controllers", allControllers, "Controllers to run.")
	fs.IntVar(&o.workers, "concurrent-workers", 5, "Workers per controller.")
	fs.Float32Var(&o.qps, "kube-api-qps", 20, "Client-side QPS limit, used only when the API server has no priority and fairness.")
	fs.IntVar(&o.burst, "kube-api-burst", 50, "Client-side burst limit, used only when the API server has no priority and fairness.")
	fs.BoolVar(&o.enableOwnerRef, "enable-certificate-owner-ref", false, "Make each Certificate an owner of its Secret.")
	fs.DurationVar(&o.minBackoff, "certificate-request-minimum-backoff-duration", time.Hour, "First delay before re-issuing after a failed CertificateRequest.")
	fs.DurationVar(&o.maxBackoff, "certificate-request-maximum-backoff-duration", 32*time.Hour, "Cap of the exponential re-issue backoff.")
	fs.StringVar(&o.featureGates, "feature-gates", "", "cert-manager controller feature gates, key=bool pairs separated by commas.")
	// Servers are off by default: several test clusters may share one host.
	fs.StringVar(&o.metricsAddress, "metrics-listen-address", "0", "Prometheus metrics address (host:port); \"0\" or empty disables it.")
	fs.StringVar(&o.healthzAddress, "healthz-listen-address", "0", "Liveness (/livez) address (host:port); \"0\" or empty disables it.")
	fs.BoolVar(&o.leaderElect, "leader-elect", false, "Take a Lease before running the controllers.")
	fs.StringVar(&o.leaderElectionNamespace, "leader-election-namespace", "kube-system", "Namespace of the leader election Lease.")
	fs.DurationVar(&o.leaseDuration, "leader-election-lease-duration", 60*time.Second, "Lease duration.")
	fs.DurationVar(&o.renewDeadline, "leader-election-renew-deadline", 40*time.Second, "How long the leader keeps retrying a renewal before giving up.")
	fs.DurationVar(&o.retryPeriod, "leader-election-retry-period", 15*time.Second, "Wait between leader election attempts.")
	logf.AddFlagsNonDeprecated(o.logging, fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	known := sets.KeySet(controller.Known())
	if unknown := sets.New(o.controllers...).Difference(known); unknown.Len() > 0 {
		return nil, fmt.Errorf("unknown controllers %v (this binary has %v)", sets.List(unknown), sets.List(known))
	}
	if o.workers < 1 {
		return nil, errors.New("--concurrent-workers must be at least 1")
	}
	return o, nil
}

// util.AppVersion ends up in the User-Agent and so in field managers and
// audit logs; upstream stamps it with -ldflags, here the linked module's
// version is read back from the build info so the build needs no flags.
func stampVersion() {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return
	}
	for _, dep := range info.Deps {
		if dep.Path == upstreamModule {
			util.AppVersion = dep.Version
			return
		}
	}
}

func main() {
	stampVersion()
	logf.InitLogs()
	opts, err := parseFlags(os.Args[1:])
	if errors.Is(err, pflag.ErrHelp) {
		os.Exit(0)
	}
	if err == nil {
		err = logf.ValidateAndApply(opts.logging)
	}
	if err == nil && opts.featureGates != "" {
		err = utilfeature.DefaultMutableFeatureGate.Set(opts.featureGates)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "cert-manager-controller: %v\n", err)
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	ctx = logf.NewContext(ctx, logf.Log, "controller")
	err = run(ctx, opts)
	stop()
	if err != nil {
		logf.FromContext(ctx).Error(err, "controller exited")
		logf.FlushLogs()
		os.Exit(1)
	}
	logf.FlushLogs()
}
