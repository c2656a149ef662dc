package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/util/sets"

	"github.com/cert-manager/cert-manager/pkg/controller"
	"github.com/cert-manager/cert-manager/pkg/healthz"
	logf "github.com/cert-manager/cert-manager/pkg/logs"
)

// healthzLeaderTimeout is upstream's: /livez fails when the leader election
// loop has not renewed for this long past the lease.
const healthzLeaderTimeout = 20 * time.Second

func contextOptions(o *options) controller.ContextOptions {
	return controller.ContextOptions{
		Kubeconfig:         o.kubeconfig,
		KubernetesAPIQPS:   o.qps,
		KubernetesAPIBurst: o.burst,
		Namespace:          o.namespace,
		IssuerOptions: controller.IssuerOptions{
			ClusterResourceNamespace: o.clusterResourceNamespace,
			// Ambient credentials only matter to ACME/Vault/Venafi, which are
			// not linked; keep them off so nothing reaches a metadata service.
			ClusterIssuerAmbientCredentials: false,
			IssuerAmbientCredentials:        false,
		},
		CertificateOptions: controller.CertificateOptions{
			EnableOwnerRef: o.enableOwnerRef,
			// Upstream's default: copy every annotation from a Certificate to
			// its CertificateRequests except the ones tools stamp.
			CopiedAnnotationPrefixes:                 []string{"*", "-kubectl.kubernetes.io/", "-fluxcd.io/", "-argocd.argoproj.io/"},
			CertificateRequestMinimumBackoffDuration: o.minBackoff,
			CertificateRequestMaximumBackoffDuration: o.maxBackoff,
		},
	}
}

func disabled(address string) bool { return address == "" || address == "0" }

func run(rootCtx context.Context, o *options) error {
	log := logf.FromContext(rootCtx)
	g, ctx := errgroup.WithContext(rootCtx)

	factory, err := controller.NewContextFactory(ctx, contextOptions(o))
	if err != nil {
		return err
	}
	// The base context shares its informer factories with every controller
	// context the factory builds; it is what starts them.
	base, err := factory.Build()
	if err != nil {
		return err
	}

	if !disabled(o.metricsAddress) {
		ln, err := net.Listen("tcp", o.metricsAddress)
		if err != nil {
			return fmt.Errorf("metrics listener: %w", err)
		}
		srv := base.Metrics.NewServer(ln)
		g.Go(func() error {
			log.Info("serving metrics", "address", ln.Addr().String())
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		})
		g.Go(func() error {
			<-ctx.Done()
			shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return srv.Shutdown(shutdownCtx)
		})
	}

	health := healthz.NewServer(healthzLeaderTimeout)
	if !disabled(o.healthzAddress) {
		ln, err := net.Listen("tcp", o.healthzAddress)
		if err != nil {
			return fmt.Errorf("healthz listener: %w", err)
		}
		g.Go(func() error {
			log.Info("serving /livez", "address", ln.Addr().String())
			return health.Start(ctx, ln)
		})
	}

	if o.leaderElect {
		elected := make(chan struct{})
		g.Go(func() error { return runLeaderElection(ctx, factory, o, health, elected) })
		select {
		case <-ctx.Done():
			return g.Wait()
		case <-elected:
		}
	}

	enabled := sets.New(o.controllers...)
	for name, construct := range controller.Known() {
		if !enabled.Has(name) {
			continue
		}
		if name == clusterScopedController && o.namespace != "" {
			log.Info("not running controller: scoped to one namespace", "controller", name)
			continue
		}
		ctrl, err := construct(factory)
		if err != nil {
			return fmt.Errorf("controller %s: %w", name, err)
		}
		g.Go(func() error {
			log.Info("starting controller", "controller", name)
			return ctrl.Run(o.workers, ctx)
		})
	}

	// Informers exist only once the controllers have registered them, so the
	// factories start after construction.
	base.SharedInformerFactory.Start(ctx.Done())
	base.KubeSharedInformerFactory.Start(ctx.Done())
	base.HTTP01ResourceMetadataInformersFactory.Start(ctx.Done())

	err = g.Wait()
	base.SharedInformerFactory.Shutdown()
	base.KubeSharedInformerFactory.Shutdown()
	base.HTTP01ResourceMetadataInformersFactory.Shutdown()
	if err != nil {
		return err
	}
	// A cancelled root context is a requested shutdown; anything else ending
	// every control loop is not.
	if rootCtx.Err() == nil {
		return errors.New("control loops exited")
	}
	log.Info("control loops exited")
	return nil
}
