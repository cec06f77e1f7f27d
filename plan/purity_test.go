package plan

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
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
	// usesK8s marks packages allowed to import k8s.io/api and
	// k8s.io/apimachinery, which themselves import net, net/http and os.
	// For them the standard-library network and OS packages are checked as
	// direct imports only (forbiddenImports, in every checked file); the
	// transitive ban keeps covering os/exec, ssh, sftp, grpc and urfave.
	usesK8s bool
	// edgeFiles are the package's non-test files that may do I/O; every
	// other non-test file is checked for forbidden imports and clock reads.
	edgeFiles []string
	// mustDeclare lists functions that must be declared in a checked file,
	// so that the check cannot silently go stale when code moves.
	mustDeclare []string
}

func purePackages() []purePackage {
	return []purePackage{
		{pkg: "plan", checkDeps: true, usesK8s: true, mustDeclare: []string{"AllocatePodCIDRs", "LowerPod", "NodeSpecs"}},
		{pkg: "plan/sched", checkDeps: true, usesK8s: true, mustDeclare: []string{"Schedule"}},
		{pkg: "plan/controller", checkDeps: true, usesK8s: true, mustDeclare: []string{"RefOf"}},
		{pkg: "plan/workloads", checkDeps: true, usesK8s: true, mustDeclare: []string{"Reconcile"}},
		{pkg: "plan/jobs", checkDeps: true, usesK8s: true, mustDeclare: []string{"ReconcileJobs"}},
		{pkg: "plan/autoscale", checkDeps: true, usesK8s: true, mustDeclare: []string{"Recommend"}},
		{pkg: "plan/cronsched", checkDeps: true, usesK8s: true, mustDeclare: []string{"Parse"}},
		{pkg: "plan/admission", checkDeps: true, usesK8s: true, mustDeclare: []string{"New", "Admit", "LimitPod", "Usage"}},
		{pkg: "plan/disruption", checkDeps: true, usesK8s: true, mustDeclare: []string{"Evaluate", "CanEvict"}},
		{pkg: "nodeapi", checkDeps: true, mustDeclare: []string{"DecodeNodeSpec", "CheckFence"}},
		{pkg: "manifest", checkDeps: true, usesK8s: true, edgeFiles: []string{"read.go"}, mustDeclare: []string{"Decode", "Encode", "DecodeStored"}},
		{pkg: "inventory", edgeFiles: []string{"load.go", "save.go", "lock.go", "credentials.go"}, mustDeclare: []string{"Parse", "Marshal"}},
	}
}

// forbiddenDeps may not appear among a pure package's transitive
// dependencies. Standard-library entries match exactly (net/netip is fine,
// net is not); others match their whole subtree.
func forbiddenDeps() []string {
	return append([]string{"net", "net/http"}, forbiddenDepsK8s()...)
}

// forbiddenDepsK8s is forbiddenDeps for packages that use the Kubernetes
// API types, which bring in net and net/http (but not os/exec).
func forbiddenDepsK8s() []string {
	return []string{
		"os/exec",
		"golang.org/x/crypto/ssh",
		"github.com/pkg/sftp",
		"google.golang.org/grpc",
		"github.com/urfave/cli/v2",
	}
}

// forbiddenImports may not be imported directly by a checked file. The
// k8s.io/apimachinery entries are its randomness and waiting helpers.
func forbiddenImports() []string {
	return []string{"os", "os/exec", "net", "net/http", "syscall", "math/rand", "math/rand/v2", "crypto/rand",
		"k8s.io/apimachinery/pkg/util/rand", "k8s.io/apimachinery/pkg/util/uuid", "k8s.io/apimachinery/pkg/util/wait"}
}

// clockPackage is a package with functions that read the clock or wait on
// it: its usual name (for messages) and those functions.
type clockPackage struct {
	name  string
	funcs []string
}

// clockPackages are the clock-reading packages by import path: time, and
// metav1 (Now) for packages using the Kubernetes API types.
func clockPackages() map[string]clockPackage {
	return map[string]clockPackage{
		"time":                                 {"time", []string{"Now", "Since", "Until", "Sleep", "After", "AfterFunc", "Tick", "NewTimer", "NewTicker"}},
		"k8s.io/apimachinery/pkg/apis/meta/v1": {"metav1", []string{"Now", "NowMicro"}},
	}
}

func isForbiddenDep(dep string, usesK8s bool) bool {
	forbidden := forbiddenDeps()
	if usesK8s {
		forbidden = forbiddenDepsK8s()
	}
	for _, f := range forbidden {
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
					if isForbiddenDep(dep, p.usesK8s) {
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
	clocks := clockPackages()
	local := map[string]clockPackage{} // by the name it is imported as
	for _, imp := range f.Imports {
		ip, _ := strconv.Unquote(imp.Path.Value)
		if slices.Contains(forbiddenImports(), ip) {
			problems = append(problems, "imports "+ip)
		}
		cp, ok := clocks[ip]
		if !ok {
			continue
		}
		name := ip[strings.LastIndex(ip, "/")+1:] // both packages are named after their last element
		if imp.Name != nil {
			name = imp.Name.Name
		}
		switch name {
		case ".":
			problems = append(problems, fmt.Sprintf("dot-imports %q, hiding clock reads", ip))
		case "_":
		default:
			local[name] = cp
		}
	}
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok {
			declared[fd.Name.Name] = true
		}
	}
	if len(local) == 0 {
		return problems
	}
	ast.Inspect(f, func(n ast.Node) bool {
		sel, ok := n.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		if x, ok := sel.X.(*ast.Ident); ok {
			if cp, ok := local[x.Name]; ok && slices.Contains(cp.funcs, sel.Sel.Name) {
				problems = append(problems, "uses "+cp.name+"."+sel.Sel.Name+"; pass the time in instead")
			}
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
		{"metav1.Now", "package p\nimport metav1 \"k8s.io/apimachinery/pkg/apis/meta/v1\"\nvar t = metav1.Now()\nvar u = metav1.NewTime(t.Time)\n",
			[]string{"uses metav1.Now; pass the time in instead"}},
		{"metav1 unnamed", "package p\nimport \"k8s.io/apimachinery/pkg/apis/meta/v1\"\nvar t = v1.NowMicro()\n",
			[]string{"uses metav1.NowMicro; pass the time in instead"}},
		{"apimachinery randomness", "package p\nimport \"k8s.io/apimachinery/pkg/util/rand\"\nvar s = rand.String(5)\n",
			[]string{"imports k8s.io/apimachinery/pkg/util/rand"}},
		{"net/http and os/exec", "package p\nimport (\n\"net/http\"\n\"os/exec\"\n)\nvar _, _ = http.Get, exec.Command\n",
			[]string{"imports net/http", "imports os/exec"}},
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
	for _, tt := range []struct {
		dep           string
		usesK8s, want bool
	}{
		{"net", false, true}, {"net/netip", false, false}, {"os/exec", false, true}, {"os", false, false},
		{"net/http", false, true},
		{"google.golang.org/grpc", false, true}, {"google.golang.org/grpc/codes", false, true},
		{"google.golang.org/grpcx", false, false},
		{"golang.org/x/crypto/ssh/agent", false, true}, {"golang.org/x/crypto/sha3", false, false},
		// Packages using k8s.io/api may depend on net and net/http through
		// it, never on os/exec, ssh, sftp, grpc or urfave.
		{"net", true, false}, {"net/http", true, false}, {"os/exec", true, true},
		{"google.golang.org/grpc", true, true}, {"golang.org/x/crypto/ssh", true, true},
		{"github.com/pkg/sftp", true, true}, {"github.com/urfave/cli/v2", true, true},
	} {
		if got := isForbiddenDep(tt.dep, tt.usesK8s); got != tt.want {
			t.Errorf("isForbiddenDep(%q, usesK8s=%v) = %v, want %v", tt.dep, tt.usesK8s, got, tt.want)
		}
	}
}
