// health judges Kubernetes objects the way GitOps tools do, with their own libraries:
//
//	health argocd SCRIPT.lua < objects.jsonl   Argo CD's resource health script (Lua)
//	health kstatus < objects.jsonl              kstatus, which Flux's kustomize-controller waits on
//
// One JSON object per input line, one JSON result ({status, message, error}) per output line.
//
// For Argo CD the object is the global `obj`, the script returns a table with
// `status` and `message`, and only the package, base and table libraries are open (Argo CD adds a
// restricted os library; a script that needs string or math fails here first). It uses
// the same interpreter as Argo CD (github.com/yuin/gopher-lua, the version argo-cd v3.6 pins).
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"

	lua "github.com/yuin/gopher-lua"
)

type result struct {
	Status  string `json:"status"`
	Message string `json:"message"`
	Error   string `json:"error,omitempty"`
}

func main() {
	var judge func([]byte) result
	switch {
	case len(os.Args) == 3 && os.Args[1] == "argocd":
		script, err := os.ReadFile(os.Args[2])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		judge = func(line []byte) result { return evaluate(string(script), line) }
	case len(os.Args) == 2 && os.Args[1] == "kstatus":
		judge = kstatusOf
	default:
		fmt.Fprintln(os.Stderr, "usage: health argocd SCRIPT.lua < objects.jsonl | health kstatus < objects.jsonl")
		os.Exit(2)
	}
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 16<<20)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		_ = out.Encode(judge(in.Bytes()))
	}
	if err := in.Err(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
}

func evaluate(script string, line []byte) result {
	var obj map[string]any
	if err := json.Unmarshal(line, &obj); err != nil {
		return result{Error: err.Error()}
	}
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{{lua.LoadLibName, lua.OpenPackage}, {lua.BaseLibName, lua.OpenBase}, {lua.TabLibName, lua.OpenTable}} {
		l.Push(l.NewFunction(lib.open))
		l.Push(lua.LString(lib.name))
		l.Call(1, 0)
	}
	l.SetGlobal("obj", toLua(l, obj))
	if err := l.DoString(script); err != nil {
		return result{Error: err.Error()}
	}
	table, ok := l.Get(-1).(*lua.LTable)
	if !ok {
		return result{Error: "the script did not return a table"}
	}
	return result{Status: lua.LVAsString(table.RawGetString("status")), Message: lua.LVAsString(table.RawGetString("message"))}
}

// toLua turns decoded JSON into Lua values: objects become tables keyed by string, arrays become
// 1-based sequences, numbers become Lua numbers, null becomes nil.
func toLua(l *lua.LState, v any) lua.LValue {
	switch v := v.(type) {
	case map[string]any:
		t := l.NewTable()
		for k, e := range v {
			t.RawSetString(k, toLua(l, e))
		}
		return t
	case []any:
		t := l.NewTable()
		for _, e := range v {
			t.Append(toLua(l, e))
		}
		return t
	case string:
		return lua.LString(v)
	case float64:
		return lua.LNumber(v)
	case bool:
		return lua.LBool(v)
	default:
		return lua.LNil
	}
}
