// Package flagkv holds the repeatable flags the image tools share: a list flag and K=V pairs.
package flagkv

import (
	"fmt"
	"strings"
)

// Repeated is a flag that may be given many times; each value is kept, in order.
type Repeated []string

func (r *Repeated) String() string     { return strings.Join(*r, ",") }
func (r *Repeated) Set(v string) error { *r = append(*r, v); return nil }

// Map reads repeated K=V values into a map (nil when there are none); a later K wins.
func Map(flagName string, pairs []string) (map[string]string, error) {
	if len(pairs) == 0 {
		return nil, nil
	}
	m := make(map[string]string, len(pairs))
	for _, kv := range pairs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%s %q: want K=V", flagName, kv)
		}
		m[k] = v
	}
	return m, nil
}
