// promrules evaluates Prometheus alerting rules on recorded scrapes of a real /metrics endpoint,
// with Prometheus's own packages (the same rule manager, PromQL engine, TSDB and text parser that
// `promtool test rules` and a Prometheus server use). The promtool CLI itself is not built: its
// module pulls in every service-discovery plugin and takes far longer to build cold.
//
//	promrules check RULES.yaml        parse and type-check every rule, as `promtool check rules`
//	promrules eval RULES.yaml IN.json evaluate the rules at every step, print the alerts as JSON
//
// IN.json: {"stepMs": 15000, "holdMs": 0, "scrapes": [{"timeMs": …, "labels": {"job": …}, "text": "<exposition>"}]}
// Scrapes are appended at their own (real) times, with staleness markers for series that a scrape
// no longer has, as Prometheus's scrape loop does. Rules are evaluated every stepMs from the first
// scrape to the last; the output lists, per evaluation, each active alert's state, labels and
// rendered annotations.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/model/textparse"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
)

type scrape struct {
	TimeMs int64             `json:"timeMs"`
	Labels map[string]string `json:"labels"`
	Text   string            `json:"text"`
}

type input struct {
	StepMs int64 `json:"stepMs"`
	// HoldMs repeats the last scrape every stepMs for this long: the state it shows persists, so
	// alerts with a `for` longer than the recording can reach firing. Values that are timestamps
	// (expiry) stay right; values computed from the clock at scrape time (ages) stay frozen.
	HoldMs  int64    `json:"holdMs"`
	Scrapes []scrape `json:"scrapes"`
}

type alert struct {
	State       string            `json:"state"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

type evaluation struct {
	TimeMs int64    `json:"timeMs"`
	Alerts []alert  `json:"alerts"`
	Errors []string `json:"errors,omitempty"`
}

func main() {
	if len(os.Args) < 3 {
		fail(fmt.Errorf("usage: promrules check RULES.yaml | promrules eval RULES.yaml IN.json"))
	}
	switch os.Args[1] {
	case "check":
		fail(check(os.Args[2]))
		fmt.Printf("%s: rules are valid\n", os.Args[2])
	case "eval":
		if len(os.Args) != 4 {
			fail(fmt.Errorf("usage: promrules eval RULES.yaml IN.json"))
		}
		out, err := eval(os.Args[2], os.Args[3])
		fail(err)
		fail(json.NewEncoder(os.Stdout).Encode(out))
	default:
		fail(fmt.Errorf("unknown command %q", os.Args[1]))
	}
}

func fail(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// check does what `promtool check rules` does: rulefmt validates the groups, PromQL and templates.
func check(file string) error {
	groups, errs := rulefmt.ParseFile(file, false, model.UTF8Validation, parser.NewParser(parser.Options{}), promslog.NewNopLogger())
	if len(errs) > 0 {
		return fmt.Errorf("%s: %v", file, errs)
	}
	n := 0
	for _, g := range groups.Groups {
		n += len(g.Rules)
	}
	if n == 0 {
		return fmt.Errorf("%s: no rules", file)
	}
	return nil
}

func eval(ruleFile, inputFile string) ([]evaluation, error) {
	raw, err := os.ReadFile(inputFile)
	if err != nil {
		return nil, err
	}
	var in input
	if err := json.Unmarshal(raw, &in); err != nil {
		return nil, err
	}
	if len(in.Scrapes) == 0 || in.StepMs <= 0 {
		return nil, fmt.Errorf("%s: needs scrapes and stepMs", inputFile)
	}
	sort.Slice(in.Scrapes, func(i, j int) bool { return in.Scrapes[i].TimeMs < in.Scrapes[j].TimeMs })
	final := in.Scrapes[len(in.Scrapes)-1]
	for t := final.TimeMs + in.StepMs; t <= final.TimeMs+in.HoldMs; t += in.StepMs {
		in.Scrapes = append(in.Scrapes, scrape{TimeMs: t, Labels: final.Labels, Text: final.Text})
	}

	dir, err := os.MkdirTemp("", "promrules")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	opts := tsdb.DefaultOptions()
	opts.OutOfOrderTimeWindow = 0
	db, err := tsdb.Open(dir, promslog.NewNopLogger(), nil, opts, nil)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	if err := appendScrapes(db, in.Scrapes); err != nil {
		return nil, err
	}

	engine := promql.NewEngine(promql.EngineOpts{
		Logger: promslog.NewNopLogger(), MaxSamples: 10_000_000, Timeout: time.Minute, LookbackDelta: 5 * time.Minute,
		NoStepSubqueryIntervalFn: func(int64) int64 { return in.StepMs },
	})
	defer engine.Close()
	ctx := context.Background()
	manager := rules.NewManager(&rules.ManagerOptions{
		QueryFunc:    rules.EngineQueryFunc(engine, db),
		AppendableV2: db,
		Queryable:    db,
		Context:      ctx,
		NotifyFunc:   func(context.Context, string, ...*rules.Alert) {},
		Logger:       promslog.NewNopLogger(),
	})
	groups, errs := manager.LoadGroups(time.Duration(in.StepMs)*time.Millisecond, labels.EmptyLabels(), "", nil, false, ruleFile)
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s: %v", ruleFile, errs)
	}
	names := make([]string, 0, len(groups))
	for k := range groups {
		names = append(names, k)
	}
	sort.Strings(names)

	var out []evaluation
	last := in.Scrapes[len(in.Scrapes)-1].TimeMs
	for t := in.Scrapes[0].TimeMs; t <= last; t += in.StepMs {
		ts := time.UnixMilli(t)
		e := evaluation{TimeMs: t, Alerts: []alert{}}
		for _, name := range names {
			g := groups[name]
			g.Eval(ctx, ts)
			for _, r := range g.Rules() {
				if r.LastError() != nil {
					e.Errors = append(e.Errors, fmt.Sprintf("%s: %v", r.Name(), r.LastError()))
				}
				ar, ok := r.(*rules.AlertingRule)
				if !ok {
					continue
				}
				for _, a := range ar.ActiveAlerts() {
					e.Alerts = append(e.Alerts, alert{State: a.State.String(), Labels: a.Labels.Map(), Annotations: a.Annotations.Map()})
				}
			}
		}
		out = append(out, e)
	}
	return out, nil
}

// appendScrapes stores each scrape's samples at the scrape's time, with the target labels added,
// and a staleness marker for every series the previous scrape of the same target had and this one
// has not (what Prometheus's scrape loop writes, so a gone series ends at once, not 5 minutes later).
func appendScrapes(db storage.Appendable, scrapes []scrape) error {
	previous := map[string]map[uint64]labels.Labels{}
	for _, s := range scrapes {
		target := labels.FromMap(s.Labels)
		app := db.Appender(context.Background())
		seen := map[uint64]labels.Labels{}
		p := textparse.NewPromParser([]byte(s.Text), labels.NewSymbolTable(), false)
		for {
			entry, err := p.Next()
			if err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				return fmt.Errorf("scrape at %d: %w", s.TimeMs, err)
			}
			if entry != textparse.EntrySeries {
				continue
			}
			_, _, v := p.Series()
			var lset labels.Labels
			p.Labels(&lset)
			b := labels.NewBuilder(lset)
			target.Range(func(l labels.Label) { b.Set(l.Name, l.Value) })
			lset = b.Labels()
			seen[lset.Hash()] = lset
			if _, err := app.Append(0, lset, s.TimeMs, v); err != nil {
				return fmt.Errorf("scrape at %d, %s: %w", s.TimeMs, lset, err)
			}
		}
		up := labels.NewBuilder(target).Set("__name__", "up").Labels()
		if _, err := app.Append(0, up, s.TimeMs, 1); err != nil {
			return err
		}
		key := target.String()
		for h, lset := range previous[key] {
			if _, ok := seen[h]; !ok {
				if _, err := app.Append(0, lset, s.TimeMs, math.Float64frombits(value.StaleNaN)); err != nil {
					return err
				}
			}
		}
		previous[key] = seen
		if err := app.Commit(); err != nil {
			return err
		}
	}
	return nil
}
