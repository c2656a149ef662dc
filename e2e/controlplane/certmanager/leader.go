package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/cert-manager/cert-manager/pkg/controller"
	"github.com/cert-manager/cert-manager/pkg/healthz"
)

// leaseName is upstream's, so this binary and an in-cluster cert-manager
// never run their controllers against the same API server at once.
const leaseName = "cert-manager-controller"

// runLeaderElection closes elected once this process holds the Lease and
// returns an error if it loses it after that: the controllers assume sole
// ownership, so losing the Lease must end the process.
func runLeaderElection(ctx context.Context, factory *controller.ContextFactory, o *options, health *healthz.Server, elected chan<- struct{}) error {
	leCtx, err := factory.Build("leader-election")
	if err != nil {
		return err
	}
	host, err := os.Hostname()
	if err != nil {
		return fmt.Errorf("hostname for leader identity: %w", err)
	}
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock,
		o.leaderElectionNamespace, leaseName,
		leCtx.Client.CoreV1(), leCtx.Client.CoordinationV1(),
		resourcelock.ResourceLockConfig{
			Identity:      fmt.Sprintf("%s-%d-external-cert-manager-controller", host, os.Getpid()),
			EventRecorder: leCtx.Recorder,
		})
	if err != nil {
		return fmt.Errorf("leader election lock: %w", err)
	}
	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   o.leaseDuration,
		RenewDeadline:   o.renewDeadline,
		RetryPeriod:     o.retryPeriod,
		ReleaseOnCancel: true,
		WatchDog:        health.LeaderHealthzAdaptor,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(context.Context) { close(elected) },
			// Run returning is the signal that matters; see below.
			OnStoppedLeading: func() {},
		},
	})
	if err != nil {
		return err
	}
	// Run returns only when ctx ends or the Lease could not be renewed.
	elector.Run(ctx)
	if ctx.Err() != nil {
		return nil
	}
	return errors.New("leader election lost")
}
