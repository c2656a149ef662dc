package main

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
)

// kstatusOf computes what Flux's kustomize-controller (through kstatus, the fluxcd fork of
// sigs.k8s.io/cli-utils) concludes of an object when it waits for it: Current, InProgress,
// Failed, Terminating or Unknown.
func kstatusOf(line []byte) result {
	var obj unstructured.Unstructured // decodes numbers as int64, as the API machinery does
	if err := obj.UnmarshalJSON(line); err != nil {
		return result{Error: err.Error()}
	}
	computed, err := status.Compute(&obj)
	if err != nil {
		return result{Error: err.Error()}
	}
	return result{Status: computed.Status.String(), Message: computed.Message}
}
