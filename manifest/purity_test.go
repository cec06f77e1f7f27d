package manifest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The package is pure except for read.go: decoding must not touch files,
// the network or the clock. (plan/purity_test.go's transitive dependency
// check does not fit: k8s.io/apimachinery imports net and more.)

// edgeFiles may do I/O.
func edgeFiles() []string { return []string{"read.go"} }

// forbiddenImports may not be imported by the other files.
func forbiddenImports() []string {
	return []string{"os", "os/exec", "net", "net/http", "syscall", "math/rand", "math/rand/v2", "crypto/rand",
		"k8s.io/apimachinery/pkg/util/rand", "k8s.io/apimachinery/pkg/util/uuid", "k8s.io/apimachinery/pkg/util/wait"}
}

// clockFuncs are, by import path, the functions that read the clock or wait.
func clockFuncs() map[string][]string {
	return map[string][]string{
		"time":                                 {"Now", "Since", "Until", "Sleep", "After", "AfterFunc", "Tick", "NewTimer", "NewTicker"},
		"k8s.io/apimachinery/pkg/apis/meta/v1": {"Now", "NowMicro"},
	}
}

func TestPurity(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	declared := make(map[string]bool)
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") || slices.Contains(edgeFiles(), name) {
			continue
		}
		checked++
		for _, problem := range purityProblems(t, name, declared) {
			t.Errorf("%s: %s", name, problem)
		}
	}
	if checked < 5 {
		t.Errorf("checked only %d files", checked)
	}
	for _, fn := range []string{"Decode", "Encode", "DecodeStored", "decodeFile", "defaultPod", "validatePod"} {
		if !declared[fn] {
			t.Errorf("%s is not declared in a checked (non-edge) file", fn)
		}
	}
	for _, edge := range edgeFiles() {
		if _, err := os.Stat(edge); err != nil {
			t.Errorf("edge file %s: %v", edge, err)
		}
	}
}

// purityProblems returns the purity problems of one Go file and records the
// functions and methods it declares.
func purityProblems(t *testing.T, path string, declared map[string]bool) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	var problems []string
	clocks := make(map[string]string) // local name → import path
	for _, imp := range f.Imports {
		ip, _ := strconv.Unquote(imp.Path.Value)
		if slices.Contains(forbiddenImports(), ip) {
			problems = append(problems, "imports "+ip)
		}
		if _, ok := clockFuncs()[ip]; ok {
			name := ip[strings.LastIndex(ip, "/")+1:]
			if imp.Name != nil {
				name = imp.Name.Name
			}
			if name == "." {
				problems = append(problems, "dot-imports "+strconv.Quote(ip)+", hiding clock reads")
			}
			clocks[name] = ip
		}
	}
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok {
			declared[fd.Name.Name] = true
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		sel, ok := n.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		if x, ok := sel.X.(*ast.Ident); ok && clocks[x.Name] != "" && slices.Contains(clockFuncs()[clocks[x.Name]], sel.Sel.Name) {
			problems = append(problems, "uses "+x.Name+"."+sel.Sel.Name)
		}
		return true
	})
	return problems
}

// TestPurityCheck makes sure the check catches what it should.
func TestPurityCheck(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string
	}{
		{"clean", "package p\nimport \"time\"\nfunc F(s string) (time.Time, error) { return time.Parse(time.RFC3339, s) }\n", nil},
		{"os", "package p\nimport \"os\"\nvar _ = os.Args\n", []string{"imports os"}},
		{"os/exec", "package p\nimport \"os/exec\"\nvar _ = exec.Command\n", []string{"imports os/exec"}},
		{"time.Now", "package p\nimport \"time\"\nfunc F() time.Time { return time.Now() }\n", []string{"uses time.Now"}},
		{"renamed time", "package p\nimport clock \"time\"\nvar f = clock.Since\n", []string{"uses clock.Since"}},
		{"metav1.Now", "package p\nimport metav1 \"k8s.io/apimachinery/pkg/apis/meta/v1\"\nvar t = metav1.Now()\n", []string{"uses metav1.Now"}},
		{"k8s rand", "package p\nimport \"k8s.io/apimachinery/pkg/util/rand\"\nvar s = rand.String(5)\n", []string{"imports k8s.io/apimachinery/pkg/util/rand"}},
		{"dot import", "package p\nimport . \"time\"\nvar d Duration\n", []string{`dot-imports "time", hiding clock reads`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "f.go")
			if err := os.WriteFile(path, []byte(tt.src), 0o600); err != nil {
				t.Fatal(err)
			}
			if got := purityProblems(t, path, make(map[string]bool)); !slices.Equal(got, tt.want) {
				t.Errorf("purityProblems = %q, want %q", got, tt.want)
			}
		})
	}
}
