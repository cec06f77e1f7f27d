package lab

import (
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// labinitHelperEnv makes the test binary run labinit (see startLabinit).
const labinitHelperEnv = "CLUSTERCTL_LABINIT_TEST_DIRS"

// testExe is the clusterctl binary the lab tests run as each host's PID 1
// (`clusterctl lab __init`): $CLUSTERCTL_BIN (set by make) or one TestMain
// builds.
func testExe() string {
	if bin := os.Getenv("CLUSTERCTL_BIN"); bin != "" {
		return bin
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("clusterctl-labtest-%d", os.Getpid()), "clusterctl")
}

func TestMain(m *testing.M) {
	if dir := os.Getenv(labinitHelperEnv); dir != "" {
		os.Exit(labinitHelper(dir))
	}
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	if runtime.GOOS == "linux" && os.Geteuid() == 0 && os.Getenv("CLUSTERCTL_BIN") == "" {
		exe := testExe()
		defer os.RemoveAll(filepath.Dir(exe))
		cmd := exec.Command("go", "build", "-o", exe, "./cmd/clusterctl")
		cmd.Dir = ".." // the module root
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		t0 := time.Now()
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "build clusterctl for the lab tests: %v\n", err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "built %s in %s\n", exe, time.Since(t0).Round(time.Millisecond))
	}
	return m.Run()
}

// labinitHelper runs labinit on the test dirs below dir until SIGTERM.
func labinitHelper(dir string) int {
	logger := log.New(os.Stderr, "labinit-test ", log.Lmicroseconds)
	err := runLabinit(labinitConfig{
		UnitDir:     filepath.Join(dir, "units"),
		RunDir:      filepath.Join(dir, "run"),
		LogDir:      filepath.Join(dir, "log"),
		Env:         []string{"PATH=" + servicePath, "TESTDIR=" + dir},
		StopTimeout: 500 * time.Millisecond,
		Log:         logger,
	})
	if err != nil {
		logger.Print(err)
		return 1
	}
	return 0
}
