// helm: the parts of the Helm CLI the tests need, from Helm's own Go packages (no helm binary is
// downloadable here). Built by e2e/helm/build.sh; used by manifests-app/helm-chart.test.ts and
// e2e/helm.e2e.test.ts.
//
//	helm template  CHART [-f values.yaml]... [--set k=v]... [--namespace NS] [--release NAME]
//	helm lint      CHART [-f values.yaml]... [--set k=v]...            (strict, like `helm lint --strict`)
//	helm install   CHART [-f ...] [--set ...] --namespace NS --release NAME [--take-ownership]   (against $KUBECONFIG)
//	helm upgrade   CHART [-f ...] [--set ...] --namespace NS --release NAME          (against $KUBECONFIG)
//	helm uninstall --namespace NS --release NAME
//
// template prints the rendered manifest (what `helm template --include-crds` prints); install,
// upgrade and uninstall print what Helm reports.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"strings"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/cli"
	"helm.sh/helm/v3/pkg/cli/values"
	"helm.sh/helm/v3/pkg/getter"
)

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

type options struct {
	namespace, release string
	valueFiles, sets   stringList
	takeOwnership      bool
}

func parse(args []string) (options, []string) {
	var o options
	fs := flag.NewFlagSet(os.Args[0], flag.ExitOnError)
	fs.StringVar(&o.namespace, "namespace", "lockstep-system", "release namespace")
	fs.StringVar(&o.release, "release", "lockstep", "release name")
	fs.Var(&o.valueFiles, "f", "values file (repeatable)")
	fs.Var(&o.sets, "set", "key=value (repeatable)")
	fs.BoolVar(&o.takeOwnership, "take-ownership", false, "install: adopt existing objects (helm install --take-ownership)")
	// Go's flag package stops at the first positional argument: take the chart first.
	var positional []string
	for len(args) > 0 {
		if !strings.HasPrefix(args[0], "-") {
			positional = append(positional, args[0])
			args = args[1:]
			continue
		}
		if err := fs.Parse(args); err != nil {
			fail(err)
		}
		args = fs.Args()
	}
	return o, positional
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "helm:", err)
	os.Exit(1)
}

func (o options) values(settings *cli.EnvSettings) map[string]interface{} {
	vals, err := (&values.Options{ValueFiles: o.valueFiles, Values: o.sets}).MergeValues(getter.All(settings))
	if err != nil {
		fail(err)
	}
	return vals
}

func chartArg(positional []string) string {
	if len(positional) != 1 {
		fail(fmt.Errorf("want exactly one chart directory, got %q", positional))
	}
	return positional[0]
}

func main() {
	if len(os.Args) < 2 {
		fail(fmt.Errorf("usage: helm template|lint|install|upgrade|uninstall ..."))
	}
	settings := cli.New()
	o, positional := parse(os.Args[2:])
	switch os.Args[1] {
	case "template":
		template(o, chartArg(positional), settings)
	case "lint":
		lint(o, chartArg(positional), settings)
	case "install":
		install(o, chartArg(positional), settings)
	case "upgrade":
		upgrade(o, chartArg(positional), settings)
	case "uninstall":
		uninstall(o, settings)
	default:
		fail(fmt.Errorf("unknown command %q", os.Args[1]))
	}
}

func template(o options, dir string, settings *cli.EnvSettings) {
	chart, err := loader.Load(dir)
	if err != nil {
		fail(err)
	}
	cfg := &action.Configuration{Log: func(string, ...interface{}) {}}
	client := action.NewInstall(cfg)
	client.DryRun, client.ClientOnly, client.Replace, client.IncludeCRDs = true, true, true, true
	client.ReleaseName, client.Namespace = o.release, o.namespace
	client.KubeVersion = &chartutil.KubeVersion{Version: "v1.36.0", Major: "1", Minor: "36"}
	rel, err := client.Run(chart, o.values(settings))
	if err != nil {
		fail(err)
	}
	fmt.Print(rel.Manifest)
}

func lint(o options, dir string, settings *cli.EnvSettings) {
	client := action.NewLint()
	client.Strict, client.Namespace = true, o.namespace
	result := client.Run([]string{dir}, o.values(settings))
	for _, m := range result.Messages {
		fmt.Println(m)
	}
	if len(result.Errors) > 0 {
		for _, e := range result.Errors {
			fmt.Fprintln(os.Stderr, "lint:", e)
		}
		os.Exit(1)
	}
}

func configuration(o options, settings *cli.EnvSettings) *action.Configuration {
	settings.SetNamespace(o.namespace)
	cfg := new(action.Configuration)
	logger := log.New(io.Discard, "", 0)
	if err := cfg.Init(settings.RESTClientGetter(), o.namespace, "secret", logger.Printf); err != nil {
		fail(err)
	}
	return cfg
}

func install(o options, dir string, settings *cli.EnvSettings) {
	chart, err := loader.Load(dir)
	if err != nil {
		fail(err)
	}
	client := action.NewInstall(configuration(o, settings))
	client.ReleaseName, client.Namespace, client.CreateNamespace = o.release, o.namespace, true
	client.TakeOwnership = o.takeOwnership
	rel, err := client.Run(chart, o.values(settings))
	if err != nil {
		fail(err)
	}
	fmt.Printf("installed %s revision %d: %s\n", rel.Name, rel.Version, rel.Info.Status)
}

// upgrade is `helm upgrade` without --install: the release must exist. Values are the given ones
// only (no --reuse-values), as the helm CLI does by default.
func upgrade(o options, dir string, settings *cli.EnvSettings) {
	chart, err := loader.Load(dir)
	if err != nil {
		fail(err)
	}
	client := action.NewUpgrade(configuration(o, settings))
	client.Namespace = o.namespace
	rel, err := client.Run(o.release, chart, o.values(settings))
	if err != nil {
		fail(err)
	}
	fmt.Printf("upgraded %s revision %d: %s\n", rel.Name, rel.Version, rel.Info.Status)
}

func uninstall(o options, settings *cli.EnvSettings) {
	client := action.NewUninstall(configuration(o, settings))
	resp, err := client.Run(o.release)
	if err != nil {
		fail(err)
	}
	fmt.Printf("uninstalled %s\n%s", o.release, resp.Info)
}
