package plan

import (
	"bytes"
	"encoding/json"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/clusterctl/clusterctl"

// purePackage is a package, or the pure part of one, that must stay free of
// I/O, the network and the clock. Add new pure packages here.
type purePackage struct {
	// pkg is the import path relative to the module root.
	pkg string
	// checkDeps checks the transitive dependencies against forbiddenDeps.
	// It is off for packages whose edge files legitimately do I/O.
	checkDeps bool
	// edgeFiles are the package's non-test files that may do I/O; every
	// other non-test file is checked for forbidden imports and clock reads.
	edgeFiles []string
	// mustDeclare lists functions that must be declared in a checked file,
	// so that the check cannot silently go stale when code moves.
	mustDeclare []string
}

func purePackages() []purePackage {
	return []purePackage{
		{pkg: "plan", checkDeps: true, mustDeclare: []string{"AllocatePodCIDRs"}},
		{pkg: "nodeapi", checkDeps: true, mustDeclare: []string{"DecodeNodeSpec", "CheckFence"}},
		{pkg: "inventory", edgeFiles: []string{"load.go", "save.go", "lock.go"}, mustDeclare: []string{"Parse", "Marshal"}},
	}
}

// forbiddenDeps may not appear among a pure package's transitive
// dependencies. Standard-library entries match exactly (net/netip is fine,
// net is not); others match their whole subtree.
func forbiddenDeps() []string {
	return []string{
		"os/exec",
		"net",
		"net/http",
		"golang.org/x/crypto/ssh",
		"github.com/pkg/sftp",
		"google.golang.org/grpc",
		"github.com/urfave/cli/v2",
	}
}

// forbiddenImports may not be imported directly by a checked file.
func forbiddenImports() []string {
	return []string{"os", "os/exec", "net", "net/http", "syscall", "math/rand", "math/rand/v2", "crypto/rand"}
}

// clockFuncs are the functions of package time that read the clock or wait
// on it.
func clockFuncs() []string {
	return []string{"Now", "Since", "Until", "Sleep", "After", "AfterFunc", "Tick", "NewTimer", "NewTicker"}
}

func isForbiddenDep(dep string) bool {
	for _, f := range forbiddenDeps() {
		std := !strings.Contains(strings.Split(f, "/")[0], ".")
		if dep == f || !std && strings.HasPrefix(dep, f+"/") {
			return true
		}
	}
	return false
}

type listedPackage struct {
	ImportPath string
	Dir        string
	GoFiles    []string
	Deps       []string
	Error      *struct{ Err string }
}

// goList runs `go list -json` on the pure packages.
func goList(t *testing.T, pkgs []purePackage) map[string]listedPackage {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("find the go tool to list dependencies: %v", err)
	}
	args := []string{"list", "-json", "-e"}
	for _, p := range pkgs {
		args = append(args, module+"/"+p.pkg)
	}
	cmd := exec.Command(goTool, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	listed := make(map[string]listedPackage)
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var lp listedPackage
		if err := dec.Decode(&lp); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		listed[lp.ImportPath] = lp
	}
	return listed
}

func TestPurePackages(t *testing.T) {
	pkgs := purePackages()
	listed := goList(t, pkgs)
	for _, p := range pkgs {
		t.Run(p.pkg, func(t *testing.T) {
			lp, ok := listed[module+"/"+p.pkg]
			if !ok || lp.Error != nil || len(lp.GoFiles) == 0 {
				t.Fatalf("package %s not found or broken: %+v", p.pkg, lp.Error)
			}
			if p.checkDeps {
				for _, dep := range lp.Deps {
					if isForbiddenDep(dep) {
						t.Errorf("%s depends (transitively) on %s; pure packages must not", p.pkg, dep)
					}
				}
			}
			declared := make(map[string]bool)
			for _, name := range lp.GoFiles {
				if slices.Contains(p.edgeFiles, name) {
					continue
				}
				for _, problem := range checkFile(t, filepath.Join(lp.Dir, name), declared) {
					t.Errorf("%s/%s: %s", p.pkg, name, problem)
				}
			}
			for _, fn := range p.mustDeclare {
				if !declared[fn] {
					t.Errorf("%s: %s is not declared in a checked (non-edge) file", p.pkg, fn)
				}
			}
		})
	}
}

// checkFile returns the purity problems of one Go file and records the
// functions and methods it declares.
func checkFile(t *testing.T, path string, declared map[string]bool) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	var problems []string
	timeName := ""
	for _, imp := range f.Imports {
		ip, _ := strconv.Unquote(imp.Path.Value)
		if slices.Contains(forbiddenImports(), ip) {
			problems = append(problems, "imports "+ip)
		}
		if ip == "time" {
			timeName = "time"
			if imp.Name != nil {
				timeName = imp.Name.Name
			}
		}
	}
	if timeName == "." {
		problems = append(problems, `dot-imports "time", hiding clock reads`)
	}
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok {
			declared[fd.Name.Name] = true
		}
	}
	if timeName == "" || timeName == "_" {
		return problems
	}
	ast.Inspect(f, func(n ast.Node) bool {
		sel, ok := n.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		if x, ok := sel.X.(*ast.Ident); ok && x.Name == timeName && slices.Contains(clockFuncs(), sel.Sel.Name) {
			problems = append(problems, "uses time."+sel.Sel.Name+"; pass the time in instead")
		}
		return true
	})
	return problems
}

// TestCheckFile makes sure the purity check catches what it should.
func TestCheckFile(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"clean", "package p\nimport \"time\"\nfunc F(now time.Time) time.Duration { return now.Sub(now) }\n", nil},
		{"time.Now", "package p\nimport \"time\"\nfunc F() time.Time { return time.Now() }\n",
			[]string{"uses time.Now; pass the time in instead"}},
		{"renamed time", "package p\nimport clock \"time\"\nvar f = clock.Since\n",
			[]string{"uses time.Since; pass the time in instead"}},
		{"dot import", "package p\nimport . \"time\"\nvar d Duration\n",
			[]string{`dot-imports "time", hiding clock reads`}},
		{"os and net", "package p\nimport (\n\"os\"\n\"net\"\n)\nvar _, _ = os.Args, net.IPv4len\n",
			[]string{"imports os", "imports net"}},
		{"net/netip is fine", "package p\nimport \"net/netip\"\nvar _ netip.Addr\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "f.go")
			if err := os.WriteFile(path, []byte(tt.src), 0o600); err != nil {
				t.Fatal(err)
			}
			got := checkFile(t, path, make(map[string]bool))
			if !slices.Equal(got, tt.want) {
				t.Errorf("checkFile = %q, want %q", got, tt.want)
			}
		})
	}
	for dep, want := range map[string]bool{
		"net": true, "net/netip": false, "os/exec": true, "os": false,
		"google.golang.org/grpc": true, "google.golang.org/grpc/codes": true, "google.golang.org/grpcx": false,
		"golang.org/x/crypto/ssh/agent": true, "golang.org/x/crypto/sha3": false,
	} {
		if got := isForbiddenDep(dep); got != want {
			t.Errorf("isForbiddenDep(%q) = %v, want %v", dep, got, want)
		}
	}
}
